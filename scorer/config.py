"""The one config loader: YAML → validated, immutable :class:`Config`.

The defaults here are the documented ``configs/default.yaml`` (a test keeps the two equal),
so an installed package works without the repository's ``configs/`` folder.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError

DEFAULT_PROMPT = "a pelican riding a bicycle"


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


class Calibration(_Strict):
    low: float = Field(0.15, ge=-1, le=1)
    high: float = Field(0.35, ge=-1, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> Calibration:
        if self.low >= self.high:
            raise ValueError(f"calibration.low ({self.low}) must be below calibration.high ({self.high})")
        return self


class ClipConfig(_Strict):
    enabled: bool = True
    weight: float = Field(0.5, ge=0)
    required: bool = False
    model: str = "ViT-B-32"
    pretrained: str | None = "laion2b_s34b_b79k"
    weights: str | None = None
    model_config_file: str | None = None
    templates: tuple[str, ...] = (
        "a drawing of {prompt}",
        "an illustration of {prompt}",
        "a vector graphic of {prompt}",
    )
    calibration: Calibration = Calibration()
    batch_size: int = Field(8, ge=1, le=1024)
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @model_validator(mode="after")
    def _templates_have_slot(self) -> ClipConfig:
        if not self.templates or any("{prompt}" not in t for t in self.templates):
            raise ValueError("clip.templates must be a non-empty list, each containing '{prompt}'")
        return self


class CheckConfig(_Strict):
    weight: float = Field(1.0, ge=0)
    gate: float | None = Field(None, ge=0, le=1)
    params: dict[str, Any] = Field(default_factory=dict)


def _default_checks() -> dict[str, CheckConfig]:
    return {
        "parses": CheckConfig(weight=0.05),
        "renders": CheckConfig(weight=0.0, gate=1.0),
        "not_blank": CheckConfig(weight=0.05, gate=0.25),
        "bicycle_present": CheckConfig(weight=0.2),
        "rider_on_bicycle": CheckConfig(weight=0.15),
        "closed_paths": CheckConfig(weight=0.05),
        "element_count": CheckConfig(weight=0.1),
        "within_canvas": CheckConfig(weight=0.05),
        "pelican_features": CheckConfig(weight=0.2),
        "prompt_text": CheckConfig(weight=0.05),
        # Anti-gaming gates (weight 0): each zeroes what only imitates a drawing.
        "outlined_text": CheckConfig(weight=0.0, gate=0.5),
        "embedded_raster": CheckConfig(weight=0.0, gate=0.5),
        "contrast": CheckConfig(weight=0.0, gate=0.25),
        "display_size": CheckConfig(weight=0.0, gate=0.5),
    }


class Config(_Strict):
    limits: Limits = Limits()
    render: RenderConfig = RenderConfig()
    clip: ClipConfig = ClipConfig()
    checks: dict[str, CheckConfig] = Field(default_factory=_default_checks)

    @model_validator(mode="after")
    def _known_checks(self) -> Config:
        from .measure.registry import validate_check_configs

        validate_check_configs(self.checks)
        if not self.clip.enabled and not any(c.weight > 0 for c in self.checks.values()):
            raise ValueError("nothing to score: CLIP is disabled and every check has weight 0")
        return self

    @property
    def gates(self) -> dict[str, float]:
        """Check name → the value below which it zeroes the score, for the checks that gate."""
        return {name: c.gate for name, c in self.checks.items() if c.gate is not None}

    def sha256(self) -> str:
        """A hash of the effective settings (not of the YAML text: comments don't matter)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def load_config(source: str | Path | dict[str, Any] | Config | None = None) -> Config:
    """Load a config from a YAML path, a dict, or return the defaults for ``None``.

    Relative file paths inside a YAML config (``clip.weights``, ``clip.model_config_file``)
    are resolved against the config file's folder.
    """
    if source is None:
        return Config()
    if isinstance(source, Config):
        return source
    base: Path | None = None
    if isinstance(source, (str, Path)):
        path = Path(source)
        raw = read_yaml(path, "config")
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"config {path} must be a YAML mapping at the top level")
        base, label = path.parent, str(path)
    else:
        raw, label = source, "config"
    raw = _resolve_paths(raw, base)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid {label}: {describe(exc)}") from None


def read_yaml(path: Path, what: str) -> Any:
    """A YAML file's content; :class:`ConfigError` naming ``what`` it is if unreadable or invalid."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{what} {path} is not valid YAML: {exc}") from None


def describe(exc: ValidationError) -> str:
    """Every problem pydantic found, one ``dotted.location: message`` each, on one line."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors())


def _resolve_paths(raw: dict[str, Any], base: Path | None) -> dict[str, Any]:
    clip = raw.get("clip")
    if base is None or not isinstance(clip, dict):
        return raw
    clip = dict(clip)
    for key in ("weights", "model_config_file"):
        value = clip.get(key)
        if isinstance(value, str) and not Path(value).expanduser().is_absolute():
            clip[key] = str((base / value).resolve())
    return {**raw, "clip": clip}
