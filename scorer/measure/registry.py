"""The check registry: adding a check is one decorated function plus one line of YAML.

A check is a pure function ``fn(drawing, params) -> Measurement``. Subject checks declare
the words that name their subject; they only apply when the prompt uses one of them, so one
config can judge any prompt.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config import CheckConfig
    from .drawing import Drawing


@dataclass(frozen=True)
class Measurement:
    """What one check found: a value in [0, 1], why, and the numbers behind it."""

    value: float
    explanation: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.value <= 1.0:
            raise ValueError(f"check value {self.value} outside [0, 1]")


class CheckParams(BaseModel):
    """Base of every check's parameters: unknown keys are config errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(CheckParams):
    """The parameters of a check that takes none."""


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    fn: Callable[[Drawing, Any], Measurement]
    params: type[BaseModel]
    subjects: tuple[tuple[str, ...], ...] = ()

    def applies_to(self, prompt: str) -> bool:
        """True when the prompt uses a word from every group in ``subjects``."""
        words = set(re.findall(r"[a-z]+", prompt.lower()))
        return all(words.intersection(group) for group in self.subjects)

    @property
    def subject(self) -> str:
        return " + ".join(group[0] for group in self.subjects)

    def parse_params(self, raw: Mapping[str, Any]) -> BaseModel:
        try:
            return self.params.model_validate(dict(raw))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"check {self.name!r} params: {problems}") from None


CHECKS: dict[str, Check] = {}


def check(
    name: str,
    description: str,
    *,
    params: type[BaseModel] = NoParams,
    subjects: tuple[tuple[str, ...], ...] = (),
) -> Callable[[Callable[[Drawing, Any], Measurement]], Callable[[Drawing, Any], Measurement]]:
    """Register ``fn`` as the check ``name``.

    ``subjects`` makes it a subject check: groups of words, one of each must be in the prompt.
    """

    def register(fn: Callable[[Drawing, Any], Measurement]) -> Callable[[Drawing, Any], Measurement]:
        if name in CHECKS:
            raise RuntimeError(f"check {name!r} registered twice")
        CHECKS[name] = Check(name, description, fn, params, subjects)
        return fn

    return register


def available_checks() -> dict[str, Check]:
    from . import checks, defences  # noqa: F401  (importing registers the built-in checks)

    return dict(CHECKS)


def validate_check_configs(configs: Mapping[str, CheckConfig]) -> None:
    known = available_checks()
    for name, cfg in configs.items():
        if name not in known:
            raise ConfigError(f"unknown check {name!r}; available: {', '.join(sorted(known))}")
        known[name].parse_params(cfg.params)
