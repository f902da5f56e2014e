"""Optional OCR on the render (the ``ocr`` extra: rapidocr-onnxruntime 1.4.x).

Reads words drawn as outlines rather than as ``<text>``: the typographic attack on CLIP. The
package ships its PP-OCR ONNX models inside the wheel, so nothing is downloaded. It runs on
the CPU in one thread (onnxruntime is then bit-reproducible, and the workers share the cores),
once per file, in the worker that rendered it. The engine loads lazily, once per worker.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

INSTALL_HINT = "pip install 'svgscore[ocr]'"
# The detector's input is capped at this many pixels on its longer side (ours are smaller);
# the library's default, "at least 736 px", upscales everything and costs ~1 s per image.
_DETECTOR_SIDE = 960


@lru_cache(maxsize=1)
def _engine() -> Any:
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR(
        det_limit_side_len=_DETECTOR_SIDE,
        det_limit_type="max",
        intra_op_num_threads=1,
        inter_op_num_threads=1,
        use_cls=False,  # text is written upright; the 180° classifier only adds cost
    )


@lru_cache(maxsize=1)
def unavailable() -> str | None:
    """Why OCR cannot run here (the extra is not installed: the same in every process), or None.

    An engine that is installed but fails to load raises instead: that may be this process's
    trouble alone, and answering "not checked" would score its files unlike the other workers'.
    """
    try:
        _engine()
    except ImportError as exc:
        return f"OCR unavailable: {exc.name or 'rapidocr_onnxruntime'} is not installed ({INSTALL_HINT})"
    return None


def load(_params: object = None) -> None:
    """Load the engine now, at a worker's start (see :func:`unavailable`)."""
    unavailable()


@lru_cache(maxsize=1)
def provenance() -> dict[str, Any]:
    """The OCR engine, its version and a hash of the models it reads with (once per run)."""
    import hashlib
    from importlib.metadata import PackageNotFoundError, version
    from importlib.util import find_spec

    try:
        engine = version("rapidocr-onnxruntime")
    except PackageNotFoundError:
        return {"ocr": None, "reason": unavailable()}
    spec = find_spec("rapidocr_onnxruntime")
    digest = hashlib.sha256()
    if spec is not None and spec.origin is not None:
        from pathlib import Path

        for model in sorted((Path(spec.origin).parent / "models").glob("*.onnx")):
            digest.update(model.name.encode() + b"\0" + model.read_bytes())
    return {"ocr": f"rapidocr-onnxruntime {engine}", "onnxruntime": version("onnxruntime"), "ocr_models_sha256": digest.hexdigest()}


def read_lines(rgb: np.ndarray, side: int, min_confidence: float) -> tuple[tuple[str, float], ...]:
    """The text lines OCR reads in ``rgb`` (H, W, 3 uint8) resized to ``side`` px, with their confidences.

    A fixed OCR size keeps the cost independent of render.size. The default, 224 px, is what
    CLIP sees: words from ~10 px tall are read (measured); 448 px also reads ~8 px words, at
    about five times the cost (60 vs 13 ms per image).
    """
    import cv2  # installed with rapidocr-onnxruntime

    factor = side / max(rgb.shape[:2])
    image = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC if factor > 1 else cv2.INTER_AREA)
    found, _ = _engine()(np.ascontiguousarray(image[..., ::-1]), use_cls=False)  # the library expects BGR
    return tuple((str(text), round(float(score), 4)) for _, text, score in found or () if float(score) >= min_confidence)
