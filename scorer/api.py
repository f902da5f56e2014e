"""The public entry points: a reusable :class:`Scorer` and one-call helpers around it."""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import functools
import itertools
import json
import os
import platform
import queue
import sys
import threading
import time
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .cache import ResultCache, cacheable
from .combine import combine
from .config import DEFAULT_PROMPT, Config, load_config
from .errors import ItemError, MeasureUnavailableError
from .inputs import FileBytes, ScoreItem, discover
from .isolation import WorkerPool
from .measure.bind import BoundMeasure, Overrides, Plan, bind, outside_origin
from .measure.registry import BatchItem, BatchScorer, Measurement, MeasureUnavailable, resolve_plugin
from .pipeline import Analysis, FileTask, make_analyzer
from .record import Component, ErrorInfo, Provenance, ResultKey, ScoreResult
from .render import renderer_provenance
from .version import __version__, source_sha256

ConfigSource = str | os.PathLike[str] | dict[str, Any] | Config | None


class Scorer:
    """Holds one config, its worker processes and (lazily) the batched measures' models; reuse
    it for many files.

    >>> with Scorer("structural") as scorer:
    ...     result = scorer.score_file("fixtures/ladder/05_crude_pelican_on_bicycle.svg")
    """

    def __init__(
        self,
        config: ConfigSource = None,
        *,
        params: Overrides | None = None,
        plugins: Sequence[str] = (),
        jobs: int | None = None,
        cache: bool | str | os.PathLike[str] = False,
    ) -> None:
        """``config``: a packaged name (``"structural"``), a YAML path, a dict, or None (``default``).
        ``params``: measure name → parameters that beat the config and the environment (e.g.
        ``{"clip": {"weights": path}}``). ``plugins``: more modules or ``.py`` files registering
        measures, beside the config's ``plugins:``. ``cache``: False (default) for none, True for
        the user cache directory, or a folder."""
        self.config = load_config(config).with_plugins(resolve_plugin(p, os.getcwd()) for p in plugins)
        self._overrides = {name: dict(values) for name, values in (params or {}).items()}
        self.plan = bind(self.config, self._overrides)  # unknown measures, bad params: ConfigError now
        self.config_sha256 = self.plan.sha256
        self._jobs = jobs or os.cpu_count() or 1
        self._pool: WorkerPool[FileTask, Analysis] | None = None
        # Each batched measure's model, loading or loaded (in a background thread; see _loading_of).
        self._batched: dict[str, concurrent.futures.Future[BatchScorer | MeasureUnavailable]] = {}
        self._batched_lock = threading.Lock()
        self._provenance: Provenance | None = None
        self._batch_size = max((getattr(m.params, "batch_size", 1) for m in self.plan.batched), default=0)
        self._cache = None if cache is False else ResultCache(None if cache is True else Path(cache))
        # CPU seconds by stage over the files analysed so far (render, each intermediate and
        # measure in the workers, each batched measure here) and how many: what make bench
        # prints per file so the next bottleneck is visible. Never part of a score.
        self.stage_seconds: collections.Counter[str] = collections.Counter()
        self.stage_files = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        for loaded in self._loaded():  # waits for a load still running: it cannot be interrupted
            if callable(close := getattr(loaded, "close", None)):
                close()  # a judge's HTTP client and answer cache
        self._batched.clear()
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    @property
    def pool(self) -> WorkerPool[FileTask, Analysis]:
        if self._pool is None:
            self._pool = analysis_pool(self.config, self._overrides, self._jobs)
        return self._pool

    def measure_summaries(self) -> dict[str, list[str]]:
        """What each loaded batched measure that keeps accounts (an optional ``summary()`` on
        its BatchScorer: a model judge's calls, cache hits, tokens, cost) says of this
        Scorer's runs so far."""
        return {name: list(loaded.summary()) for name, loaded in zip(self._batched, self._loaded(), strict=True) if callable(getattr(loaded, "summary", None))}

    @property
    def provenance(self) -> Provenance:
        """What produces this Scorer's numbers; loads the batched measures' models on first call."""
        if self._provenance is None:
            batched = {bound.name: batched_provenance(self._load(bound)) for bound in self.plan.batched}
            self._provenance = make_provenance(self.config, self.plan, batched)
        return self._provenance

    def _load(self, bound: BoundMeasure) -> BatchScorer | MeasureUnavailable:
        """A batched measure's scorer, loaded once; or why it cannot run (an error if required)."""
        return require_available(bound, self._loading_of(bound).result())

    def _loading_of(self, bound: BoundMeasure) -> concurrent.futures.Future[BatchScorer | MeasureUnavailable]:
        """``bound``'s model, loading in a background thread started on the first call.

        :meth:`score_items` calls this from the first file that needs the models: CLIP's load
        (torch's import, the checkpoint) then overlaps the workers' first renders instead of
        following them, and a run served wholly from the cache loads nothing.
        """
        with self._batched_lock:  # called from the pool's feeding thread and from the caller's
            if bound.name not in self._batched:
                future: concurrent.futures.Future[BatchScorer | MeasureUnavailable] = concurrent.futures.Future()
                self._batched[bound.name] = future

                def run() -> None:
                    try:
                        future.set_result(load_batched(bound))
                    except BaseException as exc:  # e.g. a ConfigError: raised where the model is first needed
                        future.set_exception(exc)

                threading.Thread(target=run, name=f"svgscore-load-{bound.name}", daemon=True).start()
            return self._batched[bound.name]

    def _loaded(self) -> list[BatchScorer | MeasureUnavailable | None]:
        """Every started load's outcome, waiting for those still running (None: it raised)."""
        concurrent.futures.wait(self._batched.values())
        return [None if f.exception() else f.result() for f in self._batched.values()]

    # -- scoring -------------------------------------------------------------------------------

    def score_svg(self, svg: str | bytes, prompt: str = DEFAULT_PROMPT, *, path: str | None = None) -> ScoreResult:
        """Score one SVG document given as text or bytes."""
        data = svg.encode("utf-8") if isinstance(svg, str) else svg
        [result] = self.score_items([ScoreItem(path=path, prompt=prompt, data=data)])
        return result

    def score_file(self, path: str | os.PathLike[str], prompt: str = DEFAULT_PROMPT) -> ScoreResult:
        [result] = self.score_items([ScoreItem(path=str(path), prompt=prompt)])
        return result

    def score_dir(
        self,
        path: str | os.PathLike[str],
        prompt: str = DEFAULT_PROMPT,
        *,
        prompts: dict[str, str] | None = None,
    ) -> Iterator[ScoreResult]:
        """Score every ``*.svg``/``*.svgz`` under ``path`` (recursively, sorted), streaming results.

        ``prompts`` maps resolved file paths to their own prompt (a manifest); others get ``prompt``.
        """
        return self.score_items(discover([Path(path)], prompt, prompts or {}))

    def score_items(self, items: Iterable[ScoreItem], *, skip: Container[ResultKey] = ()) -> Iterator[ScoreResult]:
        """Score items, yielding results in input order as soon as each (and its batch) is done.

        ``skip`` holds the :attr:`ScoreResult.key` of results already made with this config
        (resuming an interrupted run): items with those keys are passed over. Cached results
        are yielded without touching the workers or the models.
        """
        # (item, file bytes, cached result or None), in input order; filled by the reader below.
        entries: collections.deque[tuple[ScoreItem, FileBytes, ScoreResult | None]] = collections.deque()

        def tasks() -> Iterator[FileTask]:
            for item in items:
                file = item.read(self.config.limits)
                if (item.path, file.sha256, item.prompt) in skip:
                    continue
                cached = self._cached(item, file)
                entries.append((item, file, cached))
                if cached is None:
                    for bound in self.plan.batched:
                        self._loading_of(bound)
                    # An unreadable file still passes through the pool (with no bytes) to keep order.
                    yield FileTask(file.data, item.prompt)

        pending: list[tuple[ScoreItem, FileBytes, ScoreResult | Analysis | ItemError]] = []
        # The pool runs in a thread ahead of this loop, so workers render while models run here.
        for outcome in _prefetch(self.pool.imap(tasks()), depth=4 * self._jobs):
            while entries[0][2] is not None:
                pending.append(entries.popleft())  # type: ignore[arg-type]
            item, file, _ = entries.popleft()
            pending.append((item, file, file.error or outcome))
            if sum(isinstance(p[2], Analysis) for p in pending) >= self._batch_size:
                yield from self._finish(pending)
                pending = []
        pending.extend(entries)  # type: ignore[arg-type]  (all cached: the pool saw everything)
        yield from self._finish(pending)

    def _cached(self, item: ScoreItem, file: FileBytes) -> ScoreResult | None:
        if self._cache is None or file.error is not None:
            return None
        cached = self._cache.get(self._cache.key(file.sha256, item.prompt, self._cache_judge))
        return None if cached is None else dataclasses.replace(cached, path=item.path)

    @functools.cached_property
    def _cache_judge(self) -> str:
        """For the cache key: what in the provenance can move scores and is known without loading
        a model (svgscore, config hash, renderer and cairo, OCR models, plugins); a batched
        measure's model is named by the config hash (model, weights path, precision) and by its
        fingerprint (the weights file as it is now)."""
        batched = {m.name: dict(m.measure.fingerprint(m.params)) if m.measure.fingerprint else {} for m in self.plan.batched}
        return json.dumps(make_provenance(self.config, self.plan, batched).judge(), sort_keys=True)

    def _finish(self, pending: list[tuple[ScoreItem, FileBytes, ScoreResult | Analysis | ItemError]]) -> list[ScoreResult]:
        """Results for a run of entries: each batched measure on the analysed ones, then combine."""
        analysed = [(item, outcome) for item, _, outcome in pending if isinstance(outcome, Analysis)]
        batch = [BatchItem(o.image, i.prompt, o.render.sha256) for i, o in analysed]
        found: dict[int, dict[str, Component | ItemError]] = {id(o): {} for _, o in analysed}
        for _, outcome in analysed:
            self.stage_seconds.update(outcome.seconds)
        self.stage_files += len(analysed)
        for bound in self.plan.batched if batch else ():
            loaded, started = self._load(bound), time.process_time()
            measured = measure_batch(bound, loaded, batch)
            self.stage_seconds[bound.name] += time.process_time() - started
            for (_, outcome), value in zip(analysed, measured, strict=True):
                found[id(outcome)][bound.name] = value
        results = []
        for item, file, outcome in pending:
            if isinstance(outcome, ScoreResult):
                results.append(outcome)
                continue
            result = make_result(self.plan, self.config, (item.path, file.sha256, item.prompt), outcome, found.get(id(outcome), {}), self.provenance)
            if self._cache is not None and cacheable(result):
                self._cache.put(self._cache.key(file.sha256, item.prompt, self._cache_judge), result)
            results.append(result)
        return results



# -- the stages a Scorer runs, as functions: an executor elsewhere (scorer.executors.ray) runs the
# same ones on other machines, so its records are this module's records.


def analysis_pool(config: Config, overrides: Overrides, jobs: int) -> WorkerPool[FileTask, Analysis]:
    """Isolated worker processes running the per-file stages (load, render, per-file measures)."""
    return WorkerPool(
        functools.partial(make_analyzer, config, overrides, tuple(sys.path)),
        jobs=jobs,
        timeout_s=config.render.timeout_s,
        memory_mb=config.render.memory_mb,
    )


def load_batched(bound: BoundMeasure) -> BatchScorer | MeasureUnavailable:
    """A batched measure's scorer, or why it cannot run."""
    try:
        return bound.measure.factory(bound.params)  # type: ignore[misc]
    except MeasureUnavailable as exc:
        return exc
    except Exception as exc:  # noqa: BLE001  (an outside measure's bug: unavailable, with the reason)
        return MeasureUnavailable(f"{type(exc).__name__} while loading: {exc}"[:300])


def require_available(bound: BoundMeasure, loaded: BatchScorer | MeasureUnavailable) -> BatchScorer | MeasureUnavailable:
    """``loaded`` as it is, unless the config requires the measure and it cannot run."""
    if isinstance(loaded, MeasureUnavailable) and bound.required:
        raise MeasureUnavailableError(f"measure {bound.name!r} is required by the config but unavailable: {loaded.reason}")
    return loaded


def batched_provenance(loaded: BatchScorer | MeasureUnavailable) -> dict[str, Any]:
    """A batched measure's entry in ``provenance.measures``: whether it ran and what ran it."""
    if isinstance(loaded, MeasureUnavailable):
        return {"available": False, "reason": loaded.reason}
    return {"available": True, **loaded.provenance}


def make_provenance(config: Config, plan: Plan, batched: Mapping[str, dict[str, Any]]) -> Provenance:
    """What produces a run's numbers, computed where its records are made; ``batched`` holds
    each batched measure's :func:`batched_provenance` from wherever its model was loaded."""
    measures: dict[str, dict[str, Any]] = {}
    for name, bound in plan.measures.items():
        entry = dict(outside_origin(bound.measure) or {})  # built-ins: svgscore's version says it
        if bound.measure.kind == "batched":
            entry.update(batched[name])
        elif bound.measure.provenance is not None:
            entry.update(bound.measure.provenance(bound.params))
        if entry:
            measures[name] = entry
    return Provenance(
        svgscore=__version__,
        source_sha256=source_sha256(),
        config=config.name,
        config_sha256=plan.sha256,
        renderer=renderer_provenance(config.render.backend),
        python=platform.python_version(),
        platform=f"{platform.system()} {platform.machine()}",
        measures=measures,
    )


def measure_batch(bound: BoundMeasure, loaded: BatchScorer | MeasureUnavailable, batch: Sequence[BatchItem]) -> list[Component | ItemError]:
    """One batched measure's component for each analysed file of ``batch``."""
    measured = [loaded] * len(batch) if isinstance(loaded, MeasureUnavailable) else loaded.measure(batch)
    return [_component(bound, value) for value in measured]


def make_result(
    plan: Plan,
    config: Config,
    key: ResultKey,
    outcome: Analysis | ItemError,
    batched: Mapping[str, Component | ItemError],
    provenance: Provenance,
) -> ScoreResult:
    """The record of one file (``key``: path, sha256, prompt): its per-file outcome and its batched
    measures' components combined, or the error that stopped it."""
    error, render, components = None, None, {}
    failed = next((e for e in batched.values() if isinstance(e, ItemError)), None)  # a required measure's error
    if isinstance(outcome, ItemError) or failed is not None:
        reason = outcome if isinstance(outcome, ItemError) else failed
        error = ErrorInfo(reason.code, reason.message)  # type: ignore[union-attr]
        score, summary = None, f"{error.code}: {error.message}"
    else:
        # Components in the config's order, whichever process measured them.
        components = {name: batched[name] if name in batched else outcome.components[name] for name in plan.measures}
        render = outcome.render
        score, summary = combine(components, config.gates)  # type: ignore[arg-type]
    path, sha256, prompt = key
    return ScoreResult(
        path=path,
        sha256=sha256,
        prompt=prompt,
        status="ok" if error is None else "error",
        score=score,
        summary=summary,
        error=error,
        components=components,  # type: ignore[arg-type]
        render=render,
        config_sha256=plan.sha256,
        provenance=provenance,
        svgscore_version=__version__,
    )


def _component(bound: BoundMeasure, value: Measurement | ItemError | MeasureUnavailable) -> Component | ItemError:
    """A batched measure's outcome for one file as its component; a required measure's item
    error stays an error (the row becomes an error row)."""
    if isinstance(value, MeasureUnavailable):
        return Component(None, bound.weight, f"unavailable: {value.reason}; not counted, other weights renormalised")
    if isinstance(value, ItemError):
        if bound.required:
            return value
        return Component(None, bound.weight, f"{value.code}: {value.message}; not counted, other weights renormalised", {"error": value.code})
    return Component(round(value.value, 6), bound.weight, value.explanation, value.details)


def _prefetch(iterator: Iterator[Any], depth: int) -> Iterator[Any]:
    """Run ``iterator`` in a background thread, up to ``depth`` items ahead of the consumer."""
    slots: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def pump() -> None:
        try:
            for value in itertools.chain(iterator, [end]):
                while not stop.is_set():
                    try:
                        slots.put((True, value), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # noqa: BLE001  (re-raised in the consumer's thread)
            slots.put((False, exc))
        finally:
            # The consumer stopped early (or we are done): end the source here, in its own
            # thread, so a worker pool it drives is free for the next run at once.
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=pump, name="svgscore-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            ok, value = slots.get()
            if not ok:
                raise value
            if value is end:
                return
            yield value
    finally:
        stop.set()


def score_svg(svg: str | bytes, prompt: str = DEFAULT_PROMPT, config: ConfigSource = None, **kwargs: Any) -> ScoreResult:
    """Score one SVG document. Starts and stops a :class:`Scorer`; reuse one for many files."""
    with Scorer(config, jobs=1, **kwargs) as scorer:
        return scorer.score_svg(svg, prompt)


def score_file(path: str | os.PathLike[str], prompt: str = DEFAULT_PROMPT, config: ConfigSource = None, **kwargs: Any) -> ScoreResult:
    with Scorer(config, jobs=1, **kwargs) as scorer:
        return scorer.score_file(path, prompt)


def score_dir(path: str | os.PathLike[str], prompt: str = DEFAULT_PROMPT, config: ConfigSource = None, **kwargs: Any) -> Iterator[ScoreResult]:
    """Stream results for every SVG under ``path``; the scorer closes when the generator ends."""
    with Scorer(config, **kwargs) as scorer:
        yield from scorer.score_dir(path, prompt)
