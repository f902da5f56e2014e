"""CLIP text–image similarity with open_clip, loaded once and only when a config enables it.

Importing this module does not import torch; :func:`load_clip` does.

Weights come from, in order: an explicit path (``--clip-weights``, ``Scorer(clip_weights=)``),
the ``SVGSCORE_CLIP_WEIGHTS`` environment variable, ``clip.weights`` in the config, and last
the named ``clip.pretrained`` tag, which open_clip downloads from its hub when there is a
network. When none can be had, CLIP is *unavailable*, with the reason: it is never scored 0.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ClipConfig
from ..record import ClipInfo, Component

WEIGHTS_ENV = "SVGSCORE_CLIP_WEIGHTS"


@dataclass
class ClipSimilarity:
    """A loaded open_clip model with its preprocessing and tokenizer."""

    config: ClipConfig
    info: ClipInfo
    model: Any
    preprocess: Any
    tokenizer: Any
    device: str

    def __post_init__(self) -> None:
        self._text_cache: dict[str, Any] = {}

    def _text_embedding(self, prompt: str) -> Any:
        """Mean of the normalised embeddings of every template filled with ``prompt``."""
        import torch

        if prompt not in self._text_cache:
            texts = [t.format(prompt=prompt) for t in self.config.templates]
            with torch.inference_mode():
                features = self.model.encode_text(self.tokenizer(texts).to(self.device)).float().cpu()
            features = features / features.norm(dim=-1, keepdim=True)
            mean = features.mean(dim=0)
            self._text_cache[prompt] = mean / mean.norm()
        return self._text_cache[prompt]

    def cosines(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[float]:
        """Cosine similarity of each (H, W, 3) uint8 render with its prompt.

        Images go through the model in batches padded to ``clip.batch_size``: CPU kernels pick
        their code path by batch size, so a fixed size makes every image's embedding the same
        bits whatever else was scored with it — and the same as scoring it alone.
        """
        import torch
        from PIL import Image

        size = self.config.batch_size
        out: list[float] = []
        for start in range(0, len(images), size):
            chunk = images[start : start + size]
            pixels = torch.stack([self.preprocess(Image.fromarray(_square_on_white(i))) for i in chunk])
            if len(chunk) < size:
                pixels = torch.cat([pixels, pixels.new_zeros((size - len(chunk), *pixels.shape[1:]))])
            with torch.inference_mode():
                features = self.model.encode_image(pixels.to(self.device)).float()[: len(chunk)].cpu()
            features = features / features.norm(dim=-1, keepdim=True)
            for feature, prompt in zip(features, prompts[start : start + size], strict=True):
                out.append(float(feature @ self._text_embedding(prompt)))
        return out

    def components(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[Component]:
        low, high = self.config.calibration.low, self.config.calibration.high
        return [
            Component(
                round(min(1.0, max(0.0, (cos - low) / (high - low))), 6),
                self.config.weight,
                f"CLIP cosine {cos:.4f} between the render and the prompt; {low:g} or less → 0, {high:g} or more → 1",
                {"cosine": round(cos, 6)},
            )
            for cos in self.cosines(images, prompts)
        ]


def unavailable_component(config: ClipConfig, info: ClipInfo) -> Component:
    return Component(None, config.weight, f"unavailable: {info.reason}; not counted, other weights renormalised")


def resolve_weights(config: ClipConfig, explicit: str | os.PathLike[str] | None) -> str | None:
    """The local checkpoint to use, if any, by the documented precedence."""
    for candidate in (explicit, os.environ.get(WEIGHTS_ENV), config.weights):
        if candidate:
            return str(Path(candidate).expanduser())
    return None


def load_clip(config: ClipConfig, explicit_weights: str | os.PathLike[str] | None = None) -> ClipSimilarity | ClipInfo:
    """Load the model, or say why it could not be loaded (as an unavailable :class:`ClipInfo`)."""
    weights = resolve_weights(config, explicit_weights)
    source = weights or config.pretrained

    def unavailable(reason: str) -> ClipInfo:
        return ClipInfo(model=config.model, pretrained=source, available=False, reason=reason)

    if weights is not None and not Path(weights).is_file():
        return unavailable(f"weights file not found: {weights}")
    if source is None:
        return unavailable(f"no weights given (use --clip-weights, {WEIGHTS_ENV} or clip.weights)")
    # Workers render on the same cores while CLIP runs here: OpenMP threads that spin while
    # waiting then lose their core to a worker and stall the whole batch (ViT-B-32 on 2 cores
    # beside one busy process: 6.4 images/s spinning, 12.9 passive). Read once, at torch's import.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import open_clip
        import torch
    except ImportError as exc:
        return unavailable(f"open_clip/torch not installed ({exc.name}); install the 'clip' extra")
    device = config.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        return unavailable("clip.device is cuda but torch sees no CUDA device")
    if config.model_config_file:
        problem = _model_config_problem(Path(config.model_config_file), config.model)
        if problem:
            return unavailable(problem)
        open_clip.add_model_config(config.model_config_file)
    try:
        if weights:
            model, _, preprocess = open_clip.create_model_and_transforms(config.model, pretrained=None)
            _load_checkpoint_in_place(model, weights)
            model = model.to(device)
        else:
            model, _, preprocess = open_clip.create_model_and_transforms(config.model, pretrained=source, device=device)
        tokenizer = open_clip.get_tokenizer(config.model)
    except Exception as exc:  # noqa: BLE001  (hub, file and checkpoint errors come in many types)
        detail = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        hint = "" if weights else f"; pass a local checkpoint with --clip-weights or {WEIGHTS_ENV}"
        return unavailable(f"cannot load {config.model} / {source}: {detail}{hint}")
    model.eval()
    torch.manual_seed(0)  # nothing random runs at inference; this pins any op that might
    info = ClipInfo(model=config.model, pretrained=source, available=True, reason=None, device=device)
    return ClipSimilarity(config, info, model, preprocess, tokenizer, device)


def _load_checkpoint_in_place(model: Any, path: str) -> None:
    """open_clip's own checkpoint loading (all its format conversions), at half the peak memory.

    open_clip reads the whole state dict into memory and copies it into the randomly initialised
    parameters, so a model is briefly held twice (ViT-B-32: ~1.9 GB peak instead of ~1.4 GB).
    Here the file is memory-mapped and its tensors replace the parameters (``assign=True``).
    """
    from open_clip.factory import load_checkpoint

    try:
        from torch.utils.serialization import config as serialization
    except ImportError:  # older torch: read into memory, as open_clip does
        serialization = None
    mmap_before = serialization.load.mmap if serialization else False
    model.load_state_dict = functools.partial(type(model).load_state_dict, model, assign=True)
    try:
        if serialization:
            serialization.load.mmap = True
        load_checkpoint(model, path)  # weights_only: a checkpoint cannot run code
    finally:
        del model.load_state_dict
        if serialization:
            serialization.load.mmap = mmap_before


def _model_config_problem(path: Path, model: str) -> str | None:
    """Why open_clip would reject or silently ignore this model-config file, if it would.

    Checked here because open_clip keeps every path it is given and re-reads them all on each
    later registration: one bad file would break every later load in the process.
    """
    if path.stem != model:
        return f"clip.model_config_file must be named {model}.json to define model {model!r}, not {path.name}"
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return f"cannot read clip.model_config_file {path}: {exc.strerror}"
    except json.JSONDecodeError as exc:
        return f"clip.model_config_file {path} is not JSON: {exc.msg} (line {exc.lineno})"
    missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if not isinstance(spec, dict) or k not in spec]
    return f"clip.model_config_file {path} lacks {', '.join(missing)}" if missing else None


def _square_on_white(image: np.ndarray) -> np.ndarray:
    """Pad to a centred square on white, so CLIP's centre crop cuts nothing off."""
    height, width = image.shape[:2]
    side = max(height, width)
    if height == width:
        return image
    square = np.full((side, side, 3), 255, dtype=np.uint8)
    top, left = (side - height) // 2, (side - width) // 2
    square[top : top + height, left : left + width] = image
    return square
