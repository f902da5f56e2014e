"""CLIP text–image similarity with open_clip's models: a batched measure, loaded once per Scorer.

Two engines run the model (``params.engine``): torch, as open_clip does, or OpenVINO, on the model
converted once per checkpoint (:mod:`.clip_openvino`), in a process that never imports torch.
Importing this module imports neither; the factory does, when a Scorer first sends a file to its workers.

Weights come from, in order: an explicit override (``--clip-weights``, ``Scorer(params=)``),
the ``SVGSCORE_CLIP_WEIGHTS`` environment variable, ``params.weights`` in the config, and last
the named ``params.pretrained`` tag, which open_clip downloads from its hub when there is a
network. When none can be had, CLIP is *unavailable*, with the reason: it is never scored 0.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
from pydantic import Field, ValidationInfo, field_validator, model_validator

from ..config import default_cache_dir
from .registry import BatchItem, Measurement, MeasureParams, MeasureUnavailable, batched

_log = logging.getLogger(__name__)
WEIGHTS_ENV = "SVGSCORE_CLIP_WEIGHTS"
Precision = Literal["fp32", "bf16"]
Engine = Literal["torch", "openvino"]
# How long the one reachability probe of the weights' host may take before CLIP is declared
# unavailable: without it, a machine with no network spends ~47 s in the hub client's retries.
PROBE_TIMEOUT_S = 2.0
# CPU flags of hardware bf16 multiplication (x86 AMX, AVX-512 BF16; Arm's bf16 dot products).
_NATIVE_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16", "bf16"})


class Calibration(MeasureParams):
    low: float = Field(0.15, ge=-1, le=1, description="cosine of an unrelated picture (value 0)")
    high: float = Field(0.35, ge=-1, le=1, description="cosine of a clear, on-prompt picture (value 1)")

    @model_validator(mode="after")
    def _ordered(self) -> Calibration:
        if self.low >= self.high:
            raise ValueError(f"calibration.low ({self.low}) must be below calibration.high ({self.high})")
        return self


class ClipParams(MeasureParams):
    path_fields: ClassVar[tuple[str, ...]] = ("weights", "model_config_file")
    env_fields: ClassVar[dict[str, str]] = {"weights": WEIGHTS_ENV}

    model: str = Field("ViT-B-32", description="open_clip model name")
    pretrained: str | None = Field("laion2b_s34b_b79k", description="open_clip pretrained tag, downloaded when no local weights are given")
    weights: str | None = Field(None, description=f"local checkpoint; also --clip-weights and {WEIGHTS_ENV}")
    model_config_file: str | None = Field(None, description="open_clip model-config JSON for a custom architecture (file stem = model name)")
    templates: tuple[str, ...] = Field(
        ("a drawing of {prompt}", "an illustration of {prompt}", "a vector graphic of {prompt}"),
        description="prompt templates; the text embedding is the mean over all of them",
    )
    calibration: Calibration = Field(Calibration(), description="raw cosine → value: linear from low (0) to high (1), clamped")
    batch_size: int = Field(8, ge=1, le=1024, description="images per forward pass; every batch is padded to it (bit-identical results)")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when present")
    # Resolved when the params are bound (see resolve_precision), so the config hash, the cache
    # key and the record all name the precision that produced the number, never "auto".
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto",
        validate_default=True,
        description="weights and activations: bf16 (~2.7× faster where the hardware multiplies it: AMX, AVX-512 BF16, CUDA), "
        "fp32, or auto: bf16 where native, fp32 elsewhere (emulated bf16 is slower than fp32)",
    )

    # Resolved when bound, like the precision: the hash, the cache key and the record name it.
    engine: Literal["auto", "torch", "openvino"] = Field(
        "auto",
        validate_default=True,
        description="what runs the model: openvino (the model converted once per checkpoint, then run without torch: "
        "less memory, a faster start and forward), torch, or auto: openvino on the CPU where it is installed and "
        "reproduces the model's tokenizer, torch elsewhere",
    )

    @field_validator("precision")
    @classmethod
    def _resolve_precision(cls, value: str, info: ValidationInfo) -> str:
        return resolve_precision(value, info.data.get("device", "auto"))

    @field_validator("engine")
    @classmethod
    def _resolve_engine(cls, value: str, info: ValidationInfo) -> str:
        data = info.data
        return resolve_engine(value, data.get("device", "auto"), data.get("model", ""), data.get("model_config_file"))

    @model_validator(mode="after")
    def _templates_have_slot(self) -> ClipParams:
        if not self.templates or any("{prompt}" not in t for t in self.templates):
            raise ValueError("templates must be a non-empty list, each containing '{prompt}'")
        return self


def resolve_precision(requested: str, device: str, cpu_flags: frozenset[str] | None = None, gpu: bool | None = None) -> Precision:
    """``fp32``/``bf16`` as asked; ``auto``: bf16 where the device multiplies it natively.

    Decided without importing torch (workers bind these params too): CPU flags from
    /proc/cpuinfo, and for ``device: auto`` whether an NVIDIA GPU is present (the factory then
    picks CUDA). Deterministic per machine; ``cpu_flags`` and ``gpu`` are for tests.
    """
    if requested != "auto":
        return requested  # type: ignore[return-value]
    if device == "cuda" or (device == "auto" and (_nvidia_gpu() if gpu is None else gpu)):
        return "bf16"
    flags = _cpu_flags() if cpu_flags is None else cpu_flags
    return "bf16" if flags & _NATIVE_BF16_FLAGS else "fp32"


def resolve_engine(requested: str, device: str, model: str, model_config_file: str | None, gpu: bool | None = None) -> Engine:
    """``torch``/``openvino`` as asked; ``auto``: openvino where it can run the model here.

    That is: on the CPU (``device: auto`` without a GPU), with openvino installed, and for a
    model whose text tower uses open_clip's own BPE tokenizer (an HF tokenizer, named in the
    model's config, needs torch's engine). Decided without importing anything heavy.
    """
    if requested != "auto":
        return requested  # type: ignore[return-value]
    if device == "cuda" or (device == "auto" and (_nvidia_gpu() if gpu is None else gpu)):
        return "torch"
    if importlib.util.find_spec("openvino") is None:
        return "torch"
    text = _model_spec(model, model_config_file).get("text_cfg", {})
    return "torch" if isinstance(text, dict) and (text.get("hf_tokenizer_name") or text.get("hf_model_name")) else "openvino"


def _model_spec(model: str, model_config_file: str | None) -> dict[str, Any]:
    """The open_clip model config that ``model`` names ({} if unknown: the load will say so)."""
    if model_config_file:
        path = Path(model_config_file)
    else:
        spec = importlib.util.find_spec("open_clip")  # finds the package without importing it
        if spec is None or not spec.submodule_search_locations:
            return {}
        path = Path(next(iter(spec.submodule_search_locations))) / "model_configs" / f"{model}.json"
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:  # not Linux: no evidence of native bf16, so fp32
        return frozenset()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86, Arm
            flags.update(value.split())
    return frozenset(flags)


@functools.lru_cache(maxsize=1)
def _nvidia_gpu() -> bool:
    """An NVIDIA driver with a GPU that CUDA_VISIBLE_DEVICES does not hide."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    gpus = Path("/proc/driver/nvidia/gpus")
    return gpus.is_dir() and any(gpus.iterdir())


class ClipTowers(Protocol):
    """What runs the model: embeddings of renders and of texts, as float32 arrays (N, D)."""

    def encode_images(self, squares: Sequence[np.ndarray]) -> np.ndarray:
        """``squares``: at most the measure's ``batch_size`` square (S, S, 3) uint8 renders."""
        ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass
class ClipSimilarity:
    """A loaded CLIP model (either engine): the ``clip`` measure's BatchScorer."""

    config: ClipParams
    provenance: dict[str, Any]
    towers: ClipTowers

    _text_cache: dict[str, np.ndarray] = field(default_factory=dict)

    def _text_embedding(self, prompt: str) -> np.ndarray:
        """Mean of the normalised embeddings of every template filled with ``prompt``."""
        if prompt not in self._text_cache:
            features = self.towers.encode_texts([t.format(prompt=prompt) for t in self.config.templates])
            features = features / np.linalg.norm(features, axis=-1, keepdims=True)
            mean = features.mean(axis=0)
            self._text_cache[prompt] = mean / np.linalg.norm(mean)
        return self._text_cache[prompt]

    def cosines(self, images: Sequence[np.ndarray], prompts: Sequence[str]) -> list[float]:
        """Cosine similarity of each (H, W, 3) uint8 render with its prompt.

        Images go through the model in batches padded to the clip measure's ``batch_size``: CPU kernels pick
        their code path by batch size, so a fixed size makes every image's embedding the same
        bits whatever else was scored with it — and the same as scoring it alone.
        """
        size = self.config.batch_size
        out: list[float] = []
        for start in range(0, len(images), size):
            features = self.towers.encode_images([_square_on_white(i) for i in images[start : start + size]])
            features = features / np.linalg.norm(features, axis=-1, keepdims=True)
            for feature, prompt in zip(features, prompts[start : start + size], strict=True):
                out.append(float(feature @ self._text_embedding(prompt)))
        return out

    def measure(self, items: Sequence[BatchItem]) -> list[Measurement]:
        low, high = self.config.calibration.low, self.config.calibration.high
        return [
            Measurement(
                round(min(1.0, max(0.0, (cos - low) / (high - low))), 6),
                f"CLIP cosine {cos:.4f} between the render and the prompt; {low:g} or less → 0, {high:g} or more → 1",
                {"cosine": round(cos, 6)},
            )
            for cos in self.cosines([i.image for i in items], [i.prompt for i in items])
        ]


@dataclass
class TorchTowers:
    """The torch engine: the open_clip model itself, with its own preprocessing and tokenizer."""

    model: Any
    preprocess: Any
    tokenizer: Any
    device: str
    dtype: Any  # torch.float32 or torch.bfloat16: the model's weights and its image inputs
    batch_size: int

    def encode_images(self, squares: Sequence[np.ndarray]) -> np.ndarray:
        import torch
        from PIL import Image

        pixels = torch.stack([self.preprocess(Image.fromarray(square)) for square in squares])
        if len(squares) < self.batch_size:
            pixels = torch.cat([pixels, pixels.new_zeros((self.batch_size - len(squares), *pixels.shape[1:]))])
        with torch.inference_mode():
            return self.model.encode_image(pixels.to(self.device, self.dtype)).float()[: len(squares)].cpu().numpy()

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model.encode_text(self.tokenizer(list(texts)).to(self.device)).float().cpu().numpy()


def _files_as_they_are(config: ClipParams) -> dict[str, str]:
    """The local files the parameters name by path (weights, model config), each as its size,
    times and inode: a file saved again there differs, with no need to read its content (the
    record's ``checkpoint_sha256`` does, when the model loads)."""
    found = {}
    for name in ("weights", "model_config_file"):
        path = getattr(config, name)
        if path is not None and (now := _as_it_is(path)) is not None:  # missing: the load will say so
            found[name] = now
    return found


def _as_it_is(path: str) -> str | None:
    """``path``'s size, modification and change times and inode; None if it cannot be read."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}:{stat.st_ino}"


@batched(
    "clip",
    "CLIP cosine similarity between the render (without <text>) and the prompt, calibrated to [0, 1]",
    params=ClipParams,
    fingerprint=_files_as_they_are,
)
def load_clip(config: ClipParams) -> ClipSimilarity:
    """Load the model, or raise :class:`MeasureUnavailable` saying why it could not be loaded."""
    weights, source = config.weights, config.weights or config.pretrained
    if weights is not None and not Path(weights).is_file():
        raise MeasureUnavailable(f"weights file not found: {weights}")
    if source is None:
        raise MeasureUnavailable(f"no weights given (use --clip-weights, {WEIGHTS_ENV} or params.weights)")
    if config.model_config_file and (problem := _model_config_problem(Path(config.model_config_file), config.model)):
        raise MeasureUnavailable(problem)
    # The provenance's hash reads the whole checkpoint (ViT-B-32: 0.33 s): beside the engine's
    # import, which holds the interpreter while hashing does not.
    checksum = _hashing(weights) if weights else None
    if config.engine == "openvino":
        towers, device, versions = _openvino_towers(config, source, checksum)
    else:
        towers, device, versions = _torch_towers(config)
    provenance = {
        "model": config.model,
        "pretrained": source,
        "checkpoint_sha256": checksum.result() if checksum else None,
        "device": device,
        "precision": config.precision,
        "engine": config.engine,
        **versions,
    }
    return ClipSimilarity(config, provenance, towers)


def _open_clip_model(config: ClipParams, device: str) -> tuple[Any, Any, Any, str]:
    """open_clip's model (fp32, eval mode), preprocessing and tokenizer, and the device it is on."""
    weights, source = config.weights, config.weights or config.pretrained
    # Workers render on the same cores while CLIP runs here: OpenMP threads that spin while
    # waiting then lose their core to a worker and stall the whole batch (ViT-B-32 on 2 cores
    # beside one busy process: 6.4 images/s spinning, 12.9 passive). Read once, at torch's import.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import open_clip
        import torch
    except ImportError as exc:
        raise MeasureUnavailable(f"open_clip/torch not installed ({exc.name}); install the 'clip' extra") from None
    offline = None if weights else _go_offline_if_unreachable(open_clip, config.model, str(source))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise MeasureUnavailable("device is cuda but torch sees no CUDA device")
    if config.model_config_file:
        open_clip.add_model_config(config.model_config_file)
    try:
        if weights:
            with _without_random_init(), _quiet_open_clip(_RANDOM_WEIGHTS_WARNING):
                model, _, preprocess = open_clip.create_model_and_transforms(config.model, pretrained=None)
            _load_checkpoint_in_place(model, weights)
            model = model.to(device)
        else:
            with _quiet_open_clip(_DOWNLOAD_ERROR):  # the reason below says it, once
                model, _, preprocess = open_clip.create_model_and_transforms(config.model, pretrained=source, device=device)
        tokenizer = open_clip.get_tokenizer(config.model)
    except Exception as exc:  # noqa: BLE001  (hub, file and checkpoint errors come in many types)
        detail = textwrap.shorten((str(exc).splitlines() or [type(exc).__name__])[0], 300, placeholder=" …")
        hint = "" if weights else f"; pass a local checkpoint with --clip-weights or {WEIGHTS_ENV}"
        if offline:
            detail = f"{offline} and not in the hub's local cache"
        raise MeasureUnavailable(f"cannot load {config.model} / {source}: {detail}{hint}") from None
    model.eval()
    return model, preprocess, tokenizer, device


def _torch_towers(config: ClipParams) -> tuple[TorchTowers, str, dict[str, str]]:
    import open_clip
    import torch

    model, preprocess, tokenizer, device = _open_clip_model(config, config.device)
    dtype = torch.bfloat16 if config.precision == "bf16" else torch.float32
    _convert_releasing(model, dtype, config.weights)
    torch.manual_seed(0)  # nothing random runs at inference; this pins any op that might
    towers = TorchTowers(model, preprocess, tokenizer, device, dtype, config.batch_size)
    return towers, device, {"open_clip": open_clip.__version__, "torch": torch.__version__}


def _openvino_towers(
    config: ClipParams, source: str, checksum: concurrent.futures.Future[str] | None
) -> tuple[ClipTowers, str, dict[str, Any]]:
    """The model's OpenVINO bundle — converted first, in a subprocess, if this is its first use — compiled."""
    if config.device == "cuda":
        raise MeasureUnavailable("the openvino engine runs on the CPU; use clip.engine: torch for device cuda")
    try:
        from . import clip_openvino
    except ImportError as exc:
        raise MeasureUnavailable(f"openvino not installed ({exc.name}); install the 'clip' extra or use clip.engine: torch") from None
    model_config = Path(config.model_config_file).read_text(encoding="utf-8") if config.model_config_file else None
    key = clip_openvino.bundle_key(config.model, checksum.result() if checksum else source, model_config)
    folder = default_cache_dir() / "clip-openvino" / key
    if key in _unconvertible:
        raise MeasureUnavailable(_unconvertible[key])
    if not clip_openvino.is_bundle(folder):
        _log.warning("clip: preparing %s / %s for the openvino engine: loading it with torch and converting it, once for these weights", config.model, source)
        try:
            _convert_in_subprocess(config, folder)
        except MeasureUnavailable as exc:
            _unconvertible[key] = exc.reason  # a second Scorer of the run gets the answer without a second try
            raise
    try:
        towers = clip_openvino.OpenVinoTowers(folder, config.precision, config.batch_size, _release_file_pages)
    except ValueError as exc:
        raise MeasureUnavailable(str(exc)) from None
    versions = clip_openvino.versions()
    return towers, "cpu", {"open_clip": versions["open_clip"], "openvino": versions["openvino"], "converted_with": towers.converted_with, "bundle": key}


_UNAVAILABLE = "svgscore-clip-unavailable: "  # how the conversion subprocess says why it could not convert
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # where the subprocess imports scorer from: here, installed or not
_unconvertible: dict[str, str] = {}  # bundle key → why it could not be converted, once per process (as _probed)


def _convert_in_subprocess(config: ClipParams, folder: Path) -> None:
    """Write ``folder``'s bundle from a fresh interpreter: torch is imported there, never here.

    Built in a staging folder beside it and renamed into place, so a bundle is whole or absent;
    of two processes converting the same model at once, the first rename wins (the same bytes).
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        run = subprocess.run(
            [sys.executable, "-c", "import sys; from scorer.measure.clip import _build_openvino_bundle; _build_openvino_bundle(*sys.argv[1:])",
             config.model_dump_json(), str(staging)],
            env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")]))},
            stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False,
        )
        if run.returncode != 0:
            lines = [line for line in run.stderr.splitlines() if line.strip()]
            said = [line.removeprefix(_UNAVAILABLE) for line in lines if line.startswith(_UNAVAILABLE)]
            raised = [line for line in lines if re.match(r"[\w.]+(Error|Exception): ", line)]  # a traceback's last word
            detail = textwrap.shorten(raised[-1] if raised else f"exit code {run.returncode}", 300, placeholder=" …")
            reason = said[-1] if said else f"converting {config.model} for the openvino engine failed: {detail}; use clip.engine: torch"
            raise MeasureUnavailable(reason)
        with contextlib.suppress(OSError):  # already there: another process converted it meanwhile
            os.rename(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _build_openvino_bundle(params: str, target: str) -> None:
    """The conversion subprocess: load the model with torch as the torch engine does, convert it."""
    # OpenVINO's converter reports usage through openvino_telemetry unless the user opted out
    # (a client id and counters under ~/intel, and a send to Google Analytics); without that
    # package it uses its own no-op stub. svgscore's users did not ask for either.
    sys.modules["openvino_telemetry"] = None  # type: ignore[assignment]  # so its import fails: the stub
    from . import clip_openvino

    config = ClipParams.model_validate_json(params)
    try:
        model, preprocess, tokenizer, _ = _open_clip_model(config, "cpu")
        clip_openvino.convert(model, preprocess, tokenizer, Path(target), describe=f"{config.model} / {config.weights or config.pretrained}")
    except (MeasureUnavailable, ValueError) as exc:
        sys.stderr.write(f"{_UNAVAILABLE}{exc}\n")
        sys.exit(3)


def _go_offline_if_unreachable(open_clip: Any, model: str, tag: str) -> str | None:
    """Probe, once per process, the host the ``tag``'s weights would come from; when it cannot
    be reached, put the hub client in offline mode for the rest of the run (weights already in
    its cache still load; anything else fails at once) instead of letting it retry for ~47 s.

    One TCP connect with a short timeout answers "is there a network?" without depending on
    the hub's HTTP behaviour; the answer is remembered, so a second Scorer does not ask again.
    Returns why the hub is not asked — no network (the probe's answer), or the hub client set
    offline (``HF_HUB_OFFLINE``, by the user or by an earlier probe) — or None.
    """
    import huggingface_hub.constants as hub

    cfg = open_clip.get_pretrained_cfg(model, tag) or {}
    url = hub.ENDPOINT if cfg.get("hf_hub") or not cfg.get("url") else cfg["url"]
    if url not in _probed and not hub.HF_HUB_OFFLINE:  # the user's HF_HUB_OFFLINE=1: nothing to ask
        _probed[url] = probe(url)
    reason = _probed.get(url)
    if reason is not None:
        hub.HF_HUB_OFFLINE = True  # read by the hub client on every call
        return f"no network ({reason})"
    return "HF_HUB_OFFLINE is on" if hub.HF_HUB_OFFLINE else None


_probed: dict[str, str | None] = {}  # URL → why its host is unreachable (None: reachable), once per process


def probe(url: str) -> str | None:
    """Why ``url``'s host cannot be reached (one TCP connect, ``PROBE_TIMEOUT_S``), or None."""
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or (80 if parts.scheme == "http" else 443)
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
            outcome.append(None)
        except OSError as exc:
            outcome.append("timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__))

    # In a thread: name resolution has no timeout of its own, and a dead resolver can stall it.
    thread = threading.Thread(target=connect, name="svgscore-hub-probe", daemon=True)
    thread.start()
    thread.join(PROBE_TIMEOUT_S)
    reason = outcome[0] if outcome else "no answer"
    return None if outcome and reason is None else f"{host}:{port} unreachable ({reason} within {PROBE_TIMEOUT_S:g} s)"


def _hashing(path: str) -> concurrent.futures.Future[str]:
    """:func:`_file_sha256` of ``path``, running in a thread of its own."""
    pool = concurrent.futures.ThreadPoolExecutor(1, "svgscore-sha256")
    try:
        return pool.submit(_file_sha256, path, _as_it_is(path))
    finally:
        pool.shutdown(wait=False)  # its thread ends with that one task


@functools.lru_cache(maxsize=8)
def _file_sha256(path: str, as_it_is: str | None) -> str:
    """``as_it_is`` (:func:`_as_it_is`) keys the memo: a file saved again is hashed again."""
    del as_it_is
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _without_random_init() -> Any:
    """A context in which new modules get their parameters but not their random initial values.

    Only for a model whose every parameter a strict checkpoint load replaces next: the draws
    would be thrown away, and they are most of the cost of building it (ViT-B-32: 1.2 s and
    580 MB of written pages, against 0.03 s and 9 MB; untouched ``torch.empty`` memory is not
    resident). Deterministic values — buffers such as the causal attention mask, constants,
    zeros — are still computed. A torch function mode is per thread and ends with the block:
    nothing global is patched.
    """
    import torch
    from torch.nn import init
    from torch.overrides import TorchFunctionMode

    draws = {torch.Tensor.normal_, torch.Tensor.uniform_, init.normal_, init.uniform_, init.kaiming_uniform_, init.kaiming_normal_}

    class WithoutRandomInit(TorchFunctionMode):
        def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            if func in draws:
                return args[0] if args else kwargs["tensor"]  # the tensor, left as allocated
            return func(*args, **(kwargs or {}))

    return WithoutRandomInit()


# open_clip's log records that svgscore says better itself (open_clip logs on the root logger).
# Built without weights for the checkpoint that fills it next, it would tell users their weights were ignored:
_RANDOM_WEIGHTS_WARNING = "No pretrained weights loaded for model"
# A hub download that failed: the measure's reason gives the same error (and why the hub was not asked):
_DOWNLOAD_ERROR = "Failed to download weights for tag"


@contextlib.contextmanager
def _quiet_open_clip(opening: str) -> Iterator[None]:
    """Drop open_clip's log records that begin with ``opening``: only those, only during the block."""

    def keep(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(opening)

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


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


_CONVERT_SLICE_BYTES = 8 << 20  # source bytes converted, then released, at a time


def _convert_releasing(model: Any, dtype: Any, checkpoint: str | None) -> None:
    """``model.to(dtype)`` in place, one tensor at a time, releasing each converted tensor's
    pages of a memory-mapped checkpoint as it goes.

    A checkpoint loaded in place (:func:`_load_checkpoint_in_place`) is a private mapping of the
    file that nothing writes to: converting the whole model reads every page of it into memory
    beside the bf16 copy (ViT-B-32: 580 + 290 MB). Those pages are copies of the file, so dropping
    them (``madvise(MADV_DONTNEED)``) loses nothing — touched again, they are read again — and the
    peak becomes the bf16 model plus one slice of a tensor. Only whole pages inside both the converted
    tensor and a mapping of the checkpoint file (``/proc/self/maps``) are released; elsewhere
    (not Linux, no checkpoint) this is a plain conversion. Shared parameters are converted once,
    as ``Module.to`` does.
    """
    converted = [t for t in [*model.parameters(), *model.buffers()] if t.is_floating_point() and t.dtype != dtype]
    if not converted:
        return  # fp32 as loaded: nothing to convert, no mappings to read
    release = _page_releaser(checkpoint)
    for tensor in converted:
        if not tensor.is_contiguous():
            tensor.data = tensor.data.to(dtype)
            continue
        # In slices, each slice's source pages released once copied: the largest tensor (ViT-B-32's
        # token embedding, 101 MB in fp32) is then never resident whole beside its copy.
        source, start, width = tensor.data.view(-1), tensor.data_ptr(), tensor.element_size()
        copy = tensor.data.new_empty(tensor.shape, dtype=dtype)
        target, step = copy.view(-1), _CONVERT_SLICE_BYTES // width
        for first in range(0, source.numel(), step):
            last = min(first + step, source.numel())
            target[first:last].copy_(source[first:last])
            release(start + first * width, (last - first) * width)
        release(start, tensor.nbytes)  # the pages that straddled two slices
        tensor.data = copy


def _page_releaser(path: str | None) -> Any:
    """A function dropping the whole pages of [start, start + size) that lie in a mapping of ``path``.

    Only mappings whose pages are always the file's: private ones (nothing here writes to them)
    and read-only ones. Dropped pages touched again are read again from the file.
    """
    import ctypes
    import mmap

    maps = Path("/proc/self/maps")
    if path is None or not maps.is_file() or not hasattr(mmap, "MADV_DONTNEED"):
        return lambda start, size: None
    target = os.path.realpath(path)
    ranges = []
    for line in maps.read_text().splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5] == target and (fields[1].endswith("p") or fields[1][1] == "-"):
            low, high = (int(x, 16) for x in fields[0].split("-"))
            ranges.append((low, high))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    page = mmap.PAGESIZE

    def release(start: int, size: int) -> None:
        for low, high in ranges:
            first = max(low, -(-start // page) * page)
            last = min(high, (start + size) // page * page)
            if first < last:
                libc.madvise(first, last - first, mmap.MADV_DONTNEED)

    return release


def _release_file_pages(path: Path) -> None:
    """Drop from this process every resident page of ``path``'s mappings (see :func:`_page_releaser`)."""
    _page_releaser(str(path))(0, 1 << 62)


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
