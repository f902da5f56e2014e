"""Hand-made result records for the compare, report and gate tests, in both record versions.

Version 1 is the README's schema before provenance (a ``clip`` block, ``record_version: 1``);
version 2 carries a ``provenance`` block. Tests change one provenance field at a time with
``judge={...}`` to see which differences the gates notice.
"""

from __future__ import annotations

import copy
from typing import Any

PROMPT = "a pelican riding a bicycle"

PROVENANCE: dict[str, Any] = {
    "svgscore": "0.2.0",
    "source_sha256": "a" * 64,
    "config": "structural",
    "config_sha256": "c0",
    "renderer": {"backend": "cairosvg", "version": "2.9.1", "native": "cairo 1.16.0"},
    "python": "3.11.7",
    "platform": "Linux x86_64",
    "measures": {
        "clip": {
            "available": True, "model": "ViT-B-32", "pretrained": "/w/ViT-B-32.bin", "checkpoint_sha256": "b" * 64,
            "device": "cpu", "precision": "fp32", "open_clip": "3.2.0", "torch": "2.14.1",
        },
        "outlined_text": {"ocr": "rapidocr-onnxruntime 1.4.4", "onnxruntime": "1.32.0", "ocr_models_sha256": "d" * 64},
    },
}  # fmt: skip


def record(
    path: str | None,
    score: float | None,
    *,
    prompt: str = PROMPT,
    config: str = "c0",
    error: str | None = None,
    message: str = "bad",
    explanation: str = "ok",
    version: int = 2,
    judge: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A record as ``svgscore score`` writes it. ``judge`` overrides provenance fields (nested
    dicts are merged one level down: ``{"renderer": {"native": "cairo 1.18.0"}}``)."""
    data: dict[str, Any] = {
        "path": path, "sha256": path or "0" * 64, "prompt": prompt, "status": "error" if error else "ok",
        "score": None if error else score, "summary": "", "error": {"code": error, "message": message} if error else None,
        "components": {} if error else {"parses": {"value": 1.0, "weight": 0.1, "explanation": explanation, "details": {}}},
        "render": None, "config_sha256": config, "svgscore_version": "0.2.0", "record_version": version,
    }  # fmt: skip
    if version == 1:
        data["clip"] = {"model": None, "pretrained": None, "available": False, "reason": "no weights", "device": None}
        return data
    provenance = copy.deepcopy(PROVENANCE) | {"config_sha256": config}
    for key, value in (judge or {}).items():
        provenance[key] = {**provenance[key], **value} if isinstance(value, dict) else value
    data["provenance"] = provenance
    return data
