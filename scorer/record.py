"""The result record: typed, stable, and the one thing every report consumes.

The JSON shape is documented in the README ("Result record") and versioned by
``RECORD_VERSION``; change it only by adding fields.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

RECORD_VERSION = 1

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


@dataclass(frozen=True)
class RenderInfo:
    width: int
    height: int
    sha256: str


@dataclass(frozen=True)
class ClipInfo:
    model: str | None
    pretrained: str | None
    available: bool
    reason: str | None = None
    device: str | None = None


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
    clip: ClipInfo
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
        fields["clip"] = ClipInfo(**data["clip"])
        fields["components"] = {name: Component(**c) for name, c in data["components"].items()}
        return cls(**fields)
