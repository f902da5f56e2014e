"""Binding a config to the registry: which measures run, with which validated parameters.

Config is pure data; this is where its measure names meet the registry. The parent binds once
per :class:`~scorer.Scorer` (unknown measures and bad params are :class:`ConfigError`, before
any file is read), and every worker binds the same config and plugins again, so the parent's
validation is what the workers run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import Config, MeasureConfig
from ..errors import ConfigError
from .registry import Measure, MeasureParams, load_measures, resolve_plugin, source_fingerprint

Overrides = Mapping[str, Mapping[str, Any]]  # measure name → params that beat the config and environment


@dataclass(frozen=True)
class BoundMeasure:
    name: str
    measure: Measure
    params: MeasureParams
    weight: float
    gate: float | None
    required: bool


@dataclass(frozen=True)
class Plan:
    """The measures a config runs, bound, and a hash of everything that decides their numbers."""

    measures: dict[str, BoundMeasure]
    plugins: tuple[str, ...]
    sha256: str

    @property
    def per_file(self) -> list[BoundMeasure]:
        return [m for m in self.measures.values() if m.measure.kind == "per_file"]

    @property
    def batched(self) -> list[BoundMeasure]:
        return [m for m in self.measures.values() if m.measure.kind == "batched"]


def bind(config: Config, overrides: Overrides | None = None) -> Plan:
    plugins = tuple(resolve_plugin(p, config.base_dir) for p in config.plugins)
    known = load_measures(plugins)
    overrides = overrides or {}
    measures = {}
    for name, entry in config.checks.items():
        measure = known.get(name)
        if measure is None:
            raise ConfigError(f"unknown measure {name!r}; available: {', '.join(sorted(known))} (outside measures: plugins:)")
        if entry.required and measure.kind != "batched":
            raise ConfigError(f"measure {name!r}: required applies to batched measures only (a per-file check always runs)")
        params = measure.parse_params(entry.params, base_dir=config.base_dir, overrides=overrides.get(name))
        measures[name] = BoundMeasure(name, measure, params, entry.weight, entry.gate, entry.required)
    return Plan(measures, plugins, _plan_sha256(config, measures))


def _plan_sha256(config: Config, measures: Mapping[str, BoundMeasure]) -> str:
    """The hash of the effective settings: defaults filled in, paths resolved, and for outside
    measures where they come from and a hash of their source (editing a plugin re-scores)."""
    settings = {
        "limits": config.limits.model_dump(mode="json"),
        "render": config.render.model_dump(mode="json"),
        "measures": {
            name: {
                **MeasureConfig(weight=m.weight, gate=m.gate, required=m.required).model_dump(mode="json", exclude={"params"}),
                "params": m.params.model_dump(mode="json"),
                "origin": outside_origin(m.measure),
            }
            for name, m in measures.items()
        },
    }
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def outside_origin(measure: Measure) -> dict[str, Any] | None:
    """Source, version and source hash of a measure from outside svgscore; None for built-ins."""
    fingerprint = source_fingerprint(measure.origin)
    if fingerprint is None:
        return None
    return {"source": measure.origin.source, "version": measure.origin.version, "source_sha256": fingerprint}
