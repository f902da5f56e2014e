"""The one config loader: YAML → validated, immutable :class:`Config`. Pure data.

The built-in defaults *are* the packaged ``default`` config (``scorer/configs/default.yaml``):
there is no second copy in Python. Named configs ship in the package, so ``--config
structural`` works from any install; ``--config PATH`` reads a file. Which measures exist
and what parameters they take is the registry's business: a :class:`~scorer.Scorer` checks
the configured measures when it binds them (:mod:`scorer.bind`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from .errors import ConfigError

DEFAULT_PROMPT = "a pelican riding a bicycle"
DEFAULT_CONFIG = "default"
CACHE_ENV = "SVGSCORE_CACHE_DIR"


def default_cache_dir() -> Path:
    """The folder of svgscore's caches (results, model judges' answers): ``$SVGSCORE_CACHE_DIR``,
    else ``$XDG_CACHE_HOME/svgscore``, else ``~/.cache/svgscore``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "svgscore"


class _Strict(BaseModel):
    # Unknown keys are errors: a typo in a config must not silently change nothing.
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


class Limits(_Strict):
    max_bytes: int = Field(5_000_000, gt=0)
    max_elements: int = Field(50_000, gt=0)
    max_depth: int = Field(200, gt=0)
    max_attribute_bytes: int = Field(1_000_000, gt=0)


Backend = Literal["cairosvg", "resvg"]


class RenderConfig(_Strict):
    backend: Backend = "cairosvg"
    size: int = Field(224, ge=16, le=4096)
    timeout_s: float = Field(20.0, gt=0)
    memory_mb: int = Field(2048, ge=256)


class MeasureConfig(_Strict):
    """One component of the score: a measure by name with its weight, gate and parameters."""

    weight: float = Field(1.0, ge=0)
    gate: float | None = Field(None, ge=0, le=1)
    required: bool = False  # batched measures: unavailable is an error (exit 2), not a renormalised score
    params: dict[str, Any] = Field(default_factory=dict)


class RayActors(_Strict):
    """The actor pool of one batched measure on Ray: each actor loads the measure's model once."""

    actors: int = Field(1, ge=1)
    num_gpus: float | None = Field(None, ge=0)  # per actor; None: 1 when the cluster has GPUs, else 0
    num_cpus: float = Field(1.0, ge=0)  # 0: the model shares the cores with the per-file tasks, as a local run's parent does
    batch_size: int = Field(64, ge=1)  # files per call


class RaySettings(_Strict):
    """Where ``--executor ray`` runs each stage. Not part of ``config_sha256``: it moves no score."""

    batch_size: int = Field(16, ge=1)  # files per per-file task (load, render, per-file measures)
    measures: dict[str, RayActors] = Field(default_factory=dict)  # batched measure name → its actors


class Config(_Strict):
    limits: Limits = Limits()
    render: RenderConfig = RenderConfig()
    plugins: tuple[str, ...] = ()  # modules (or .py files) that register outside measures
    checks: dict[str, MeasureConfig] = Field(default_factory=dict)
    ray: RaySettings = RaySettings()

    _name: str | None = PrivateAttr(None)  # packaged name or file path, for provenance
    _base_dir: str | None = PrivateAttr(None)  # relative paths in params and plugins resolve here

    @model_validator(mode="before")
    @classmethod
    def _clip_section(cls, raw: Any) -> Any:
        """Accept the ``clip:`` section of svgscore 0.1 configs: it is the ``clip`` measure."""
        if not isinstance(raw, dict) or "clip" not in raw:
            return raw
        raw = dict(raw)
        section = dict(raw.pop("clip") or {})
        checks = dict(raw.get("checks") or {})
        if section.pop("enabled", True):
            entry = dict(checks.get("clip") or {})
            entry.update({k: section.pop(k) for k in ("weight", "required", "gate") if k in section})
            checks["clip"] = {**entry, "params": {**entry.get("params", {}), **section}}
        else:
            checks.pop("clip", None)
        raw["checks"] = checks
        return raw

    @model_validator(mode="after")
    def _something_to_score(self) -> Config:
        if not self.checks:
            raise ValueError("no measures: list at least one under checks:")
        if not any(c.weight > 0 for c in self.checks.values()):
            raise ValueError("nothing to score: every measure has weight 0")
        return self

    @property
    def name(self) -> str | None:
        return self._name

    @property
    def base_dir(self) -> str | None:
        return self._base_dir

    @property
    def gates(self) -> dict[str, float]:
        """Measure name → the value below which it zeroes the score, for the measures that gate."""
        return {name: c.gate for name, c in self.checks.items() if c.gate is not None}

    def sha256(self) -> str:
        """A hash of the settings as written (not of the YAML text: comments don't matter).
        The Scorer's ``config_sha256`` hashes the *bound* settings instead (defaults filled in,
        paths resolved, plugin sources)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def with_plugins(self, extra: Iterable[str]) -> Config:
        """A copy that also loads the plugin modules ``extra`` (e.g. ``--plugin``)."""
        extra = tuple(extra)
        if not extra:
            return self
        return _with_origin(self.model_copy(update={"plugins": self.plugins + extra}), self._name, self._base_dir)


def packaged_configs() -> dict[str, str]:
    """Name → first comment line, for every config shipped in the package."""
    found = {}
    for entry in sorted((resources.files("scorer") / "configs").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            first = entry.read_text(encoding="utf-8").splitlines()[0]
            found[entry.name.removesuffix(".yaml")] = first.lstrip("# ").strip()
    return found


def packaged_config_text(name: str) -> str:
    entry = (resources.files("scorer") / "configs" / f"{name}.yaml")
    if not entry.is_file():
        raise ConfigError(f"no packaged config named {name!r}; available: {', '.join(packaged_configs())}")
    return entry.read_text(encoding="utf-8")


def load_config(source: str | Path | dict[str, Any] | Config | None = None) -> Config:
    """A config from a packaged name (``"structural"``), a YAML path, a dict, or ``None`` (the
    packaged ``default``). Relative file paths inside a YAML config (measure params such as
    ``clip``'s ``weights``, ``plugins:`` files) resolve against the config file's folder.
    """
    if isinstance(source, Config):
        return source
    if source is None:
        source = DEFAULT_CONFIG
    if isinstance(source, dict):
        return _validate(source, "config", None, None)
    path = Path(source)
    if isinstance(source, str) and path.suffix == "" and not path.exists():
        raw = _parse_yaml(packaged_config_text(source), f"packaged config {source}")
        return _validate(raw, f"packaged config {source}", source, None)
    raw = read_yaml(path, "config")
    return _validate(raw, str(path), str(path), str(path.resolve().parent))


def _validate(raw: Any, label: str, name: str | None, base_dir: str | None) -> Config:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{label} must be a YAML mapping at the top level")
    if "checks" not in raw and name != DEFAULT_CONFIG:
        # A config that lists no measures keeps the default set (its other sections override).
        default = load_config(DEFAULT_CONFIG)
        raw = {"checks": {n: c.model_dump() for n, c in default.checks.items()}, **raw}
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid {label}: {describe(exc)}") from None
    return _with_origin(config, name, base_dir)


def _with_origin(config: Config, name: str | None, base_dir: str | None) -> Config:
    config._name, config._base_dir = name, base_dir
    return config


def _parse_yaml(text: str, what: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} is not valid YAML: {exc}") from None


def read_yaml(path: Path, what: str) -> Any:
    """A YAML file's content; :class:`ConfigError` naming ``what`` it is if unreadable or invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    return _parse_yaml(text, f"{what} {path}")


def describe(exc: ValidationError) -> str:
    """Every problem pydantic found, one ``dotted.location: message`` each, on one line."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors())
