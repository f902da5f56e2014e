"""The ``clip`` measure's OpenVINO engine: an open_clip model converted once, then run without torch.

Why: ``import torch`` and ``import open_clip`` cost ~3.3 s and ~750 MB before any model exists
(PyPI's torch is a CUDA build whose libraries load without a GPU; open_clip imports
torchvision, which imports ``torch._dynamo``): that set the scoring process's memory and the time
to the first CLIP result. OpenVINO imports in ~0.15 s and runs ViT-B-32 on the CPU faster than
torch in both precisions (image tower, 2 cores, measured once: fp32 50 vs 20 images/s, bf16 ~93 vs
~81); ``make bench`` gives what that does end to end.

A *bundle* holds both towers as OpenVINO IR (fp32 weights; the precision is chosen when they
are compiled) and what the preprocessing and tokenizer need. It is written once per model and
weights, by :func:`convert` in a process that has torch (see ``clip._build_openvino_bundle``),
which also checks there, on probe inputs, that this module's tokenizer and preprocessing give
exactly open_clip's and that the converted towers agree with torch's.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from .clip_bpe import ClipBpeTokenizer

BUNDLE_FORMAT = 1  # bump when what convert() writes changes: old bundles are then not used
_META = "bundle.json"
_TOWERS = ("image", "text")
# PIL's filters for open_clip's interpolation names (torchvision resizes PIL images with PIL).
_RESAMPLING = {"bicubic": 3, "bilinear": 2, "nearest": 0}
_PROBE_TEXTS = ("a drawing of a pelican riding a bicycle", "An SVG of a café façade — 'OPEN' sign &amp; 3 lamps", "")
_PROBE_SIDES = (224, 300, 97)  # square renders of the model's size, larger and smaller
_MIN_TOWER_COSINE = 0.9999  # converted vs torch on the probes, fp32: a sanity check of the conversion


def versions() -> dict[str, str | None]:
    """The installed openvino and open_clip (read without importing either)."""
    found: dict[str, str | None] = {}
    for package, dist in (("openvino", "openvino"), ("open_clip", "open_clip_torch")):
        try:
            found[package] = version(dist)
        except PackageNotFoundError:
            found[package] = None
    return found


def bundle_key(model: str, source: str, model_config: str | None) -> str:
    """Names a bundle by what it is converted from: the model, its weights (a checkpoint's
    sha256, or a pretrained tag), the model-config file's text, and both libraries' versions."""
    spec = {"format": BUNDLE_FORMAT, "model": model, "source": source, "model_config": model_config, **versions()}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Preprocess:
    """open_clip's inference preprocessing of a square RGB render, in numpy: resize to the
    model's side with PIL (as torchvision does for PIL images), scale to [0, 1], normalise."""

    side: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str

    def __call__(self, square: np.ndarray) -> np.ndarray:
        from PIL import Image

        image = Image.fromarray(square)
        if image.size != (self.side, self.side):
            image = image.resize((self.side, self.side), _RESAMPLING[self.interpolation])
        pixels = np.asarray(image, dtype=np.float32) / np.float32(255)
        normalised = (pixels - np.asarray(self.mean, dtype=np.float32)) / np.asarray(self.std, dtype=np.float32)
        return np.ascontiguousarray(normalised.transpose(2, 0, 1))


def convert(model: Any, preprocess: Any, tokenizer: Any, target: Path, *, describe: str) -> None:
    """Write the bundle of an fp32 open_clip ``model`` into the empty folder ``target``.

    Raises ``ValueError`` (the reason) when this engine cannot reproduce the model's
    tokenizer or preprocessing exactly; then the torch engine is the way to run it.
    """
    import openvino as ov
    import torch

    spec = _preprocess_spec(model, describe)
    ours = Preprocess(**spec)
    probes = [_probe_image(side) for side in _PROBE_SIDES]
    for image in probes:
        theirs = preprocess(_pil(image)).numpy()
        if not np.array_equal(ours(image), theirs):
            raise ValueError(f"{describe}: its image preprocessing is not reproduced exactly by the openvino engine")
    token_spec = _tokenizer_spec(tokenizer, describe)
    bpe = ClipBpeTokenizer(**token_spec)
    tokens = tokenizer(list(_PROBE_TEXTS)).numpy()
    if not np.array_equal(bpe(list(_PROBE_TEXTS)), tokens):
        raise ValueError(f"{describe}: its tokenizer is not reproduced exactly by the openvino engine")

    class Tower(torch.nn.Module):  # the model a submodule: its weights are parameters to the tracer, not constants
        def __init__(self, encode: str) -> None:
            super().__init__()
            self.model, self.encode = model, encode

        def forward(self, inputs: Any) -> Any:
            return getattr(self.model, self.encode)(inputs)

    pixels = torch.from_numpy(np.stack([ours(image) for image in probes]))
    text = torch.from_numpy(tokens)
    side, context = spec["side"], token_spec["context_length"]
    with torch.inference_mode():
        expected = {"image": model.encode_image(pixels).float().numpy(), "text": model.encode_text(text).float().numpy()}
    with torch.no_grad():
        towers = {
            "image": ov.convert_model(Tower("encode_image"), example_input=pixels, input=[([-1, 3, side, side], ov.Type.f32)]),
            "text": ov.convert_model(Tower("encode_text"), example_input=text, input=[([-1, context], ov.Type.i64)]),
        }
    inputs = {"image": pixels.numpy(), "text": tokens}
    core = ov.Core()
    for name, tower in towers.items():
        got = core.compile_model(tower, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})(inputs[name])[0]
        worst = float(_cosines(got, expected[name]).min())
        if not worst >= _MIN_TOWER_COSINE:
            raise ValueError(f"{describe}: the converted {name} tower disagrees with torch's (cosine {worst:.6f})")
        ov.save_model(tower, target / f"{name}.xml", compress_to_fp16=False)
    meta = {"format": BUNDLE_FORMAT, "preprocess": spec, "tokenizer": token_spec, "converted_with": {"torch": torch.__version__, **versions()}}
    (target / _META).write_text(json.dumps(meta, indent=2), encoding="utf-8")


def _preprocess_spec(model: Any, describe: str) -> dict[str, Any]:
    from open_clip import get_model_preprocess_cfg

    cfg = get_model_preprocess_cfg(model)
    size = cfg.get("size", 224)
    sides = {size} if isinstance(size, int) else set(size)
    if len(sides) != 1 or cfg.get("interpolation", "bicubic") not in _RESAMPLING:
        raise ValueError(f"{describe}: image size {size} / interpolation {cfg.get('interpolation')} is not supported by the openvino engine")
    # A square render: every resize mode (shortest, longest, squash) resizes it to side × side.
    return {"side": sides.pop(), "mean": tuple(cfg["mean"]), "std": tuple(cfg["std"]), "interpolation": cfg.get("interpolation", "bicubic")}


def _tokenizer_spec(tokenizer: Any, describe: str) -> dict[str, Any]:
    from open_clip import tokenizer as oc

    cleans = {oc._clean_lower: "lower", oc._clean_whitespace: "whitespace", oc._clean_canonicalize: "canonicalize"}
    plain = type(tokenizer) is oc.SimpleTokenizer and tokenizer.reduction_fn is None and len(tokenizer.all_special_ids) == 2
    if not plain or tokenizer.clean_fn not in cleans:
        raise ValueError(f"{describe}: its tokenizer ({type(tokenizer).__name__}) is not supported by the openvino engine; use clip.engine: torch")
    return {"context_length": tokenizer.context_length, "clean": cleans[tokenizer.clean_fn]}


def _probe_image(side: int) -> np.ndarray:
    """A square with gradients, edges and noise: every resize filter tap matters."""
    rng = np.random.default_rng(side)
    ramp = np.linspace(0, 255, side, dtype=np.float32)
    image = np.stack([ramp[None, :].repeat(side, 0), ramp[:, None].repeat(side, 1), np.full((side, side), 128, np.float32)], axis=-1)
    image[side // 4 : side // 2, side // 4 : side // 2] = (20, 200, 60)
    image += rng.normal(0, 12, image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def _pil(image: np.ndarray) -> Any:
    from PIL import Image

    return Image.fromarray(image)


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def is_bundle(folder: Path) -> bool:
    try:
        meta = json.loads((folder / _META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return meta.get("format") == BUNDLE_FORMAT and all((folder / f"{tower}.bin").is_file() for tower in _TOWERS)


class OpenVinoTowers:
    """Both towers of a bundle compiled for the CPU at one precision: the torch engine's
    counterpart in ``clip.ClipSimilarity``.

    After a tower's first forward the pages of its weights file are released (``release``):
    the CPU plugin has by then packed the weights it computes with into memory of its own, so
    the file's pages only doubled the footprint (ViT-B-32 in bf16: 1.0 GB → 0.43 GB). A second
    forward must give the same bits, or the load fails: pages read again come from the file.
    """

    def __init__(self, folder: Path, precision: str, batch_size: int, release: Callable[[Path], None]) -> None:
        import openvino as ov

        meta = json.loads((folder / _META).read_text(encoding="utf-8"))
        self.preprocess = Preprocess(**meta["preprocess"])
        self.tokenizer = ClipBpeTokenizer(**meta["tokenizer"])
        self.converted_with: dict[str, str] = meta["converted_with"]
        self.batch_size = batch_size
        hint = {"bf16": ov.Type.bf16, "fp32": ov.Type.f32}[precision]
        # One stream on every core, unpinned: the workers render on the same cores.
        options = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY", "ENABLE_CPU_PINNING": False}
        core = ov.Core()
        side = self.preprocess.side
        probes = {"image": np.zeros((batch_size, 3, side, side), np.float32), "text": self.tokenizer([""])}
        self._compiled: dict[str, Any] = {}
        self._lock = threading.Lock()  # one inference at a time per Scorer (a compiled model's request is not reentrant)
        for tower in _TOWERS:
            model = core.read_model(folder / f"{tower}.xml")
            if tower == "image":
                model.reshape([batch_size, 3, side, side])  # static: padded batches, the kernels fixed
            compiled = core.compile_model(model, "CPU", options)
            del model
            running = compiled.get_property("INFERENCE_PRECISION_HINT")
            if running != hint:  # asked for bf16 where the CPU has none: it would quietly run another precision
                raise ValueError(f"openvino runs {precision} as {running.get_type_name()} on this CPU: use clip.precision: fp32")
            first = compiled(probes[tower])[0].copy()
            release(folder / f"{tower}.bin")
            if not np.array_equal(compiled(probes[tower])[0], first):
                raise RuntimeError(f"the {tower} tower changed after its weights file's pages were released")
            self._compiled[tower] = compiled

    def encode_images(self, squares: Sequence[np.ndarray]) -> np.ndarray:
        """Embeddings (N, D) of ``N <= batch_size`` square uint8 renders, in a padded batch."""
        pixels = np.zeros((self.batch_size, 3, self.preprocess.side, self.preprocess.side), np.float32)
        for i, square in enumerate(squares):
            pixels[i] = self.preprocess(square)
        with self._lock:
            return np.array(self._compiled["image"](pixels)[0][: len(squares)], dtype=np.float32)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        tokens = self.tokenizer(list(texts))
        with self._lock:
            return np.array(self._compiled["text"](tokens)[0], dtype=np.float32)
