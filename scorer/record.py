"""The result record: typed, stable, and the one thing every report consumes.

The JSON shape is documented in the README ("Result record") and versioned by
``RECORD_VERSION``. Version 2 replaced the ``clip`` block with ``provenance`` (what produced the
number: svgscore, config, renderer, platform, and each measure's model or engine); records of
version 1 still load, their ``clip`` block becoming ``provenance.measures.clip``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import MISSING, asdict, dataclass, field
from dataclasses import fields as dataclass_fields
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

    def judge(self) -> dict[str, Any]:
        """The part that can move scores, flattened to ``what → value`` (see :func:`provenance_differences`)."""
        return _flatten(
            {
                "svgscore": self.svgscore,
                "source_sha256": self.source_sha256 or _ABSENT,  # None: a version 1 record
                "config_sha256": self.config_sha256,
                "renderer": self.renderer,
                # An unavailable measure is not counted whatever its reason; an available one by
                # every setting it reports, except where it ran.
                "measures": {
                    name: {k: v for k, v in entry.items() if k not in _WHERE_IT_RAN} if entry.get("available", True) else {"available": False}
                    for name, entry in self.measures.items()
                },
            }
        )

    def setting(self) -> dict[str, Any]:
        """Where the run happened: recorded and shown, never gated."""
        where = {name: {k: v for k, v in entry.items() if k in _WHERE_IT_RAN} for name, entry in self.measures.items()}
        return _flatten({"python": self.python or _ABSENT, "platform": self.platform or _ABSENT, "measures": where})

    def summary(self) -> str:
        """One line: svgscore, config, renderer, Python and platform (the measures' settings are in ``measures``)."""
        source = f" (source {self.source_sha256[:12]})" if self.source_sha256 else ""
        backend, version, native = (self.renderer.get(k) for k in ("backend", "version", "native"))
        renderer = f"renderer {backend} {version or '?'}{f' on {native}' if native else ''}" if backend else "renderer not recorded"
        where = f", Python {self.python} on {self.platform}" if self.python else ""
        return f"svgscore {self.svgscore}{source}, config {self.config or '(library dict)'} ({self.config_sha256[:12]}), {renderer}{where}"

    def fingerprint(self) -> str:
        """Equal for equal provenances (records of one run share one)."""
        return json.dumps(asdict(self), sort_keys=True)

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

    @classmethod
    def parse(cls, data: Any) -> ScoreResult:
        """:meth:`from_dict` for data read from outside: anything that is not a record (v1 or v2)
        raises ``ValueError`` saying what is wrong."""
        if not isinstance(data, dict):
            raise ValueError(f"a record is a JSON object, not {type(data).__name__}")
        required = [f.name for f in dataclass_fields(cls) if f.default is MISSING and f.name != "provenance"]  # v1 has none
        missing = [name for name in required if name not in data]
        if missing:
            raise ValueError(f"not an svgscore record: no {', '.join(missing)}")
        try:
            return cls.from_dict(data)
        except KeyError as exc:
            raise ValueError(f"not an svgscore record: no field {exc}") from None
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"not an svgscore record: {exc}") from None


# Python, platform and a measure's device (CPU/GPU) change floating-point rounding at most, far
# below a displayed score's 0.1 (the golden-scores test bounds it); a reason is why a measure was
# not counted, and not being counted is what matters. Recording them explains a drift; gating
# on them would refuse every baseline made on a colleague's laptop.
_WHERE_IT_RAN = frozenset({"device", "reason"})
_ABSENT = "(not recorded)"


@dataclass(frozen=True)
class Difference:
    """One thing that differs between two runs' provenance."""

    what: str  # e.g. "renderer.native", "measures.clip.checkpoint_sha256"
    before: Any
    after: Any
    moves_scores: bool

    def __str__(self) -> str:
        return f"{self.what}: {_show(self.before)} → {_show(self.after)}"


def provenance_differences(before: Provenance, after: Provenance) -> list[Difference]:
    """Everything that differs between two provenances, those that can move scores first.

    Can move scores (``--baseline`` refuses, ``compare`` refuses to mix): svgscore's version and
    source hash, the config hash, the renderer (backend, version, native library), and every
    setting a counted measure reports (model, checkpoint hash, precision, library versions,
    OCR models, an outside measure's version and source hash, a judge's rubric version), or
    whether it was counted at all. Only describes where it ran: Python, the platform, a
    measure's device. A field only one side recorded (an older record) counts as different:
    sameness cannot be shown.
    """
    found = []
    for flat_before, flat_after, moves in ((before.judge(), after.judge(), True), (before.setting(), after.setting(), False)):
        for what in dict.fromkeys([*flat_before, *flat_after]):
            old, new = flat_before.get(what, _ABSENT), flat_after.get(what, _ABSENT)
            if old != new:
                found.append(Difference(what, old, new, moves))
    return found


def distinct_provenances(provenances: Iterable[Provenance]) -> list[Provenance]:
    """Each different provenance once, in order of first appearance (records of one run share one)."""
    seen: dict[str, Provenance] = {}
    for provenance in provenances:
        seen.setdefault(provenance.fingerprint(), provenance)
    return list(seen.values())


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _show(value: Any) -> str:
    if value is None:
        return "none"
    text = str(value)
    # A sha256 is named by its first 12 hex digits, as everywhere else svgscore prints one.
    return text[:12] + "…" if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text
