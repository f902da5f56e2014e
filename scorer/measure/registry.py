"""The measure registry: every component of a score is a measure, found by name.

Two kinds, because they run in different places:

* **per-file** measures (``@check``): a pure function ``fn(drawing, params) -> Measurement``
  run inside the isolated worker processes on one file's tree and raster;
* **batched** measures (``@batched``): a factory ``factory(params) -> BatchScorer`` called
  once in the parent, whose ``measure(items)`` scores a batch of renders and prompts. It may
  hold a model (CLIP, a model judge) and may be unavailable, with a reason
  (:class:`MeasureUnavailable`).

Built-in measures register through the same path as outside ones: the ``svgscore.measures``
entry-point group (svgscore's own entry point names :mod:`scorer.measure.builtin`), then the
modules a config lists under ``plugins:`` (module names, or ``.py`` files). The parent and
every worker call :func:`load_measures` with the same plugin list, so what the parent
validated is what the workers run.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator

from ..errors import ConfigError, ItemError, PluginError

ENTRY_POINT_GROUP = "svgscore.measures"
BUILTIN_MODULE = "scorer.measure.builtin"


@dataclass(frozen=True)
class Measurement:
    """What one measure found for one file: a value in [0, 1], why, and the numbers behind it."""

    value: float
    explanation: str
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.value <= 1.0:
            raise ValueError(f"measure value {self.value} outside [0, 1]")


class MeasureParams(BaseModel):
    """Base of every measure's parameters: unknown keys are config errors, values are frozen.

    ``path_fields`` name string fields holding file paths: relative ones are resolved against
    the config file's folder. ``env_fields`` map a field to an environment variable that sets
    it (beating the config file, losing to an explicit override such as a CLI flag).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())
    path_fields: ClassVar[tuple[str, ...]] = ()
    env_fields: ClassVar[Mapping[str, str]] = {}

    @field_validator("*", mode="after")
    @classmethod
    def _resolve_path(cls, value: Any, info: ValidationInfo) -> Any:
        base = (info.context or {}).get("base_dir")
        if info.field_name in cls.path_fields and isinstance(value, str) and base is not None:
            path = Path(value).expanduser()
            return str(path if path.is_absolute() else (Path(base) / path).resolve())
        return value


class NoParams(MeasureParams):
    """The parameters of a measure that takes none."""


class BatchItem(NamedTuple):
    """What a batched measure sees of one file: never the SVG source, only what a viewer sees."""

    image: np.ndarray  # the render composited on white, without <text>: (H, W, 3) uint8
    prompt: str
    render_sha256: str  # of the RGBA raster: a stable key for caches of model answers


class MeasureUnavailable(Exception):  # noqa: N818  (a signal with a reason, not a failure of svgscore)
    """Raised by a batched measure's factory that cannot run here (no weights, no endpoint key)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BatchScorer(Protocol):
    """A loaded batched measure. ``provenance`` says what produces its numbers (model, checkpoint
    hash, precision, rubric version...); it goes into every record. It may also have ``close()``
    (called when its Scorer closes: connections, cache files) and ``summary()`` (lines of
    accounts for the run: calls, cache hits, tokens, cost)."""

    provenance: Mapping[str, Any]

    def measure(self, items: Sequence[BatchItem]) -> list[Measurement | ItemError]: ...


@dataclass(frozen=True)
class Origin:
    """Where a measure comes from, for ``svgscore checks``, provenance and the config hash."""

    source: str  # "svgscore (built-in)", "entry point of mypkg 1.2", "plugin module my_checks"
    module: str
    version: str | None = None


@dataclass(frozen=True)
class Measure:
    name: str
    description: str
    kind: Literal["per_file", "batched"]
    params: type[MeasureParams]
    origin: Origin
    fn: Callable[[Any, Any], Measurement] | None = None  # per-file
    factory: Callable[[Any], BatchScorer] | None = None  # batched
    subjects: tuple[tuple[str, ...], ...] = ()
    provenance: Callable[[Any], Mapping[str, Any]] | None = None  # per-file: what the parent records once per run
    setup: Callable[[Any], None] | None = None  # per-file: run once per worker before its first file
    fingerprint: Callable[[Any], Mapping[str, Any]] | None = None  # batched: its model's files, told apart unloaded

    def applies_to(self, prompt: str) -> bool:
        """True when the prompt uses a word from every group in ``subjects``."""
        words = set(re.findall(r"[a-z]+", prompt.lower()))
        return all(words.intersection(group) for group in self.subjects)

    @property
    def subject(self) -> str:
        return " + ".join(group[0] for group in self.subjects)

    def parse_params(self, raw: Mapping[str, Any], *, base_dir: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> Any:
        """Validated parameters: the config's ``raw`` values, then environment fields, then ``overrides``."""
        values = dict(raw)
        for name, var in self.params.env_fields.items():
            if os.environ.get(var):
                values[name] = os.environ[var]
        values.update(overrides or {})
        try:
            return self.params.model_validate(values, context={"base_dir": base_dir})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"measure {self.name!r} params: {problems}") from None


_REGISTRY: dict[str, Measure] = {}
_loading: list[Origin] = []  # the origin of the module being imported by load_measures
_imported: set[str] = set()  # module names and file paths load_measures has imported
# Which measures each module provides. A config sees only the measures of the modules it loads
# (entry points, built-ins, its plugins): one defined in a script that workers never import
# must be unknown up front, not a KeyError in every worker.
_provided: dict[str, list[str]] = {}


def _origin_for(module: str) -> Origin:
    if _loading:
        return _loading[-1]
    if module.startswith("scorer."):  # a built-in imported directly before load_measures ran
        from ..version import __version__

        return Origin("svgscore (built-in)", BUILTIN_MODULE, __version__)
    return Origin(f"module {module}", module)


def _register(measure: Measure) -> None:
    known = _REGISTRY.get(measure.name)
    if known is not None and known.fn is not measure.fn and known.factory is not measure.factory:
        raise PluginError(f"measure {measure.name!r} is registered twice: by {known.origin.source} and by {measure.origin.source}")
    _REGISTRY[measure.name] = measure
    _provided.setdefault(measure.origin.module, []).append(measure.name)


def check(
    name: str,
    description: str,
    *,
    params: type[MeasureParams] = NoParams,
    subjects: tuple[tuple[str, ...], ...] = (),
    provenance: Callable[[Any], Mapping[str, Any]] | None = None,
    setup: Callable[[Any], None] | None = None,
) -> Callable[[Callable[[Any, Any], Measurement]], Callable[[Any, Any], Measurement]]:
    """Register ``fn(drawing, params) -> Measurement`` as the per-file measure ``name``.

    ``subjects`` makes it a subject check: groups of words, one of each must be in the prompt.
    ``provenance(params)`` describes what produces its numbers (e.g. an OCR model's version).
    ``setup(params)`` runs once in each worker before its first file: load a model there, so
    that a worker where it fails to load is replaced instead of scoring unlike the others.
    """

    def register(fn: Callable[[Any, Any], Measurement]) -> Callable[[Any, Any], Measurement]:
        origin = _origin_for(fn.__module__)
        _register(Measure(name, description, "per_file", params, origin, fn=fn, subjects=subjects, provenance=provenance, setup=setup))
        return fn

    return register


def batched(
    name: str,
    description: str,
    *,
    params: type[MeasureParams] = NoParams,
    fingerprint: Callable[[Any], Mapping[str, Any]] | None = None,
) -> Callable[[Callable[[Any], BatchScorer]], Callable[[Any], BatchScorer]]:
    """Register ``factory(params) -> BatchScorer`` as the batched measure ``name``.

    The factory runs once per :class:`~scorer.Scorer`, in the parent, on the first batch; it
    raises :class:`MeasureUnavailable` when the measure cannot run here.
    ``fingerprint(params)`` tells apart, without loading anything, model files that the
    parameters name only by path (a checkpoint saved again at the same path): it goes into the
    result cache's key, which is made before any model loads.
    """

    def register(factory: Callable[[Any], BatchScorer]) -> Callable[[Any], BatchScorer]:
        origin = _origin_for(factory.__module__)
        _register(Measure(name, description, "batched", params, origin, factory=factory, fingerprint=fingerprint))
        return factory

    return register


@contextlib.contextmanager
def _loading_as(origin: Origin) -> Iterator[None]:
    _loading.append(origin)
    try:
        yield
    finally:
        _loading.pop()


def _import(target: str, origin: Origin) -> None:
    """Import a module by name, or a ``.py`` file by path, registering what it defines."""
    if target in _imported:
        return
    try:
        with _loading_as(origin):
            if target.endswith(".py"):
                path = Path(target)
                spec = importlib.util.spec_from_file_location(f"svgscore_plugin_{path.stem}", path)
                if spec is None or spec.loader is None or not path.is_file():
                    raise PluginError(f"measure plugin file {target} not found")
                module = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = module
                spec.loader.exec_module(module)
            else:
                importlib.import_module(target)
    except PluginError:
        raise
    except Exception as exc:  # noqa: BLE001  (any error inside a plugin is the plugin's)
        raise PluginError(f"cannot import measure plugin {target!r} ({origin.source}): {type(exc).__name__}: {exc}") from None
    _imported.add(target)


def _provided_by(target: str) -> list[str]:
    """The measures module ``target`` (or a submodule of it) registered."""
    return [name for module, names in _provided.items() if module == target or module.startswith(f"{target}.") for name in names]


def resolve_plugin(spec: str, base_dir: str | Path | None) -> str:
    """A ``plugins:`` entry as :func:`load_measures` takes it: a module name as given, a ``.py``
    file as an absolute path (relative ones against ``base_dir``, the config file's folder)."""
    if not spec.endswith(".py"):
        return spec
    path = Path(spec).expanduser()
    return str(path if path.is_absolute() or base_dir is None else (Path(base_dir) / path).resolve())


def load_measures(plugins: Sequence[str] = ()) -> dict[str, Measure]:
    """The measures a config can use: those of installed packages' entry points (svgscore's
    built-ins among them) and of ``plugins`` (module names or absolute ``.py`` paths, see
    :func:`resolve_plugin`)."""
    targets = [BUILTIN_MODULE]
    for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = point.dist
        name, version = (dist.name, dist.version) if dist is not None else (point.name, None)
        source = "svgscore (built-in)" if point.value == BUILTIN_MODULE else f"entry point {point.name} of {name}"
        _import(point.value, Origin(source, point.value, version))
        targets.append(point.value)
    if BUILTIN_MODULE not in _imported:
        # Run from a source tree that was never installed: no entry-point metadata.
        from ..version import __version__

        _import(BUILTIN_MODULE, Origin("svgscore (built-in)", BUILTIN_MODULE, __version__))
    for spec in plugins:
        _import(spec, Origin(f"plugin module {spec}", spec))
        targets.append(spec)
    return {name: _REGISTRY[name] for target in targets for name in _provided_by(target)}


def source_fingerprint(origin: Origin) -> str | None:
    """A hash of an outside measure's source (its module, or its whole package), so editing a
    plugin changes the config hash and re-scores; ``None`` for svgscore's own (the cache key
    holds svgscore's source hash already)."""
    if origin.module == BUILTIN_MODULE or origin.module.startswith("scorer."):
        return None
    module = sys.modules.get(origin.module) or sys.modules.get(f"svgscore_plugin_{Path(origin.module).stem}")
    file = getattr(module, "__file__", None)
    if file is None:
        return None
    path = Path(file)
    files = sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]
    digest = hashlib.sha256()
    for item in files:
        digest.update(item.name.encode() + b"\0" + item.read_bytes())
    return digest.hexdigest()
