"""The result record: typed, stable, and the one thing every report consumes.

The JSON shape is documented in the README ("Result record") and versioned by
``RECORD_VERSION``. Version 2 replaced the ``clip`` block with ``provenance`` (what produced the
number: svgscore, config, renderer, platform, and each measure's model or engine); records of
version 1 still load, their ``clip`` block becoming ``provenance.measures.clip``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from .errors import item_error_for

RECORD_VERSION = 2

ResultKey = tuple[str | None, str, str]  # (path, sha256, prompt): what a result is *of*, under one config


@dataclass(frozen=True)
class Component:
    """One measured part of a score: its value in [0, 1] (None when it does not count), the
    weight it carries, and a one-line explanation of what was measured and why."""

    value: float | None
    weight: float
    explanation: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ErrorInfo:
    code: str
    message: str

    @property
    def deterministic(self) -> bool:
        """Whether the same input would fail the same way again (see :class:`ItemError`)."""
        return item_error_for(self.code, self.message).deterministic


@dataclass(frozen=True)
class RenderInfo:
    width: int
    height: int
    sha256: str


@dataclass(frozen=True)
class Provenance:
    """What produced a score, computed once per run. Anything here that differs between two
    runs can move their scores (``--baseline`` and ``compare`` check it)."""

    svgscore: str  # version
    source_sha256: str | None  # of svgscore's own Python source (an editable install changes it)
    config: str | None  # packaged config name or file path (None: a dict given to the library)
    config_sha256: str
    renderer: dict[str, Any]  # backend, its version and the native library's (cairo / resvg)
    python: str
    platform: str
    # Measure name → where it comes from and what produces its numbers; batched measures add
    # "available" (and "reason" when not), model ids, checkpoint hashes, precision, rubric version.
    measures: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_v1(cls, data: dict[str, Any]) -> Provenance:
        clip = data.get("clip") or {}
        measures = {"clip": {"available": clip.get("available", False), **{k: v for k, v in clip.items() if k != "available"}}} if clip.get("model") else {}
        return cls(data.get("svgscore_version", "?"), None, None, data.get("config_sha256", ""), {}, "", "", measures)


@dataclass(frozen=True)
class ScoreResult:
    path: str | None
    sha256: str
    prompt: str
    status: Literal["ok", "error"]
    score: float | None
    summary: str
    error: ErrorInfo | None
    components: dict[str, Component]
    render: RenderInfo | None
    config_sha256: str
    provenance: Provenance
    svgscore_version: str
    record_version: int = RECORD_VERSION

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def key(self) -> ResultKey:
        return (self.path, self.sha256, self.prompt)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoreResult:
        fields = dict(data)
        fields["error"] = ErrorInfo(**data["error"]) if data.get("error") else None
        fields["render"] = RenderInfo(**data["render"]) if data.get("render") else None
        if "provenance" in fields:
            fields["provenance"] = Provenance(**data["provenance"])
        else:  # record version 1
            fields["provenance"] = Provenance.from_v1(data)
            fields.pop("clip", None)
        fields["components"] = {name: Component(**c) for name, c in data["components"].items()}
        return cls(**fields)
