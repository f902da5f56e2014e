"""The public entry points: a reusable :class:`Scorer` and one-call helpers around it."""

from __future__ import annotations

import collections
import functools
import itertools
import os
import queue
import threading
from collections.abc import Container, Iterable, Iterator
from pathlib import Path
from typing import Any

from . import __version__
from .cache import ResultCache, cacheable
from .combine import combine
from .config import DEFAULT_PROMPT, Config, load_config
from .errors import ClipUnavailableError, InputError
from .inputs import FileBytes, ScoreItem, discover
from .isolation import WorkerPool
from .measure.clip import ClipSimilarity, load_clip, resolve_weights, unavailable_component
from .pipeline import Analysis, FileTask, make_analyzer
from .record import ClipInfo, Component, ErrorInfo, ResultKey, ScoreResult

ConfigSource = str | os.PathLike[str] | dict[str, Any] | Config | None


class Scorer:
    """Holds one config, its worker processes and (lazily) the CLIP model; reuse it for many files.

    >>> with Scorer("configs/structural.yaml") as scorer:
    ...     result = scorer.score_file("fixtures/ladder/05_crude_pelican_on_bicycle.svg")
    """

    def __init__(
        self,
        config: ConfigSource = None,
        *,
        clip_weights: str | os.PathLike[str] | None = None,
        jobs: int | None = None,
        device: str | None = None,
        cache: bool | str | os.PathLike[str] = False,
    ) -> None:
        """``cache``: False (default) for none, True for the user cache directory, or a folder."""
        self.config = load_config(config)
        if device is not None:
            self.config = load_config({**self.config.model_dump(), "clip": {**self.config.clip.model_dump(), "device": device}})
        self._clip_weights = resolve_weights(self.config.clip, clip_weights)
        settings = self.config
        if self._clip_weights and settings.clip.enabled:
            # The checkpoint in use is part of what the score means, so it is part of the hash.
            settings = settings.model_copy(update={"clip": settings.clip.model_copy(update={"weights": self._clip_weights})})
        self.config_sha256 = settings.sha256()
        self._jobs = jobs or os.cpu_count() or 1
        self._pool: WorkerPool[FileTask, Analysis] | None = None
        self._clip: ClipSimilarity | ClipInfo | None = None
        self._cache = None if cache is False else ResultCache(None if cache is True else Path(cache))

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        if self._cache is not None:
            self._cache.close()
            self._cache = None

    @property
    def pool(self) -> WorkerPool[FileTask, Analysis]:
        if self._pool is None:
            render = self.config.render
            self._pool = WorkerPool(
                functools.partial(make_analyzer, self.config),
                jobs=self._jobs,
                timeout_s=render.timeout_s,
                memory_mb=render.memory_mb,
            )
        return self._pool

    @property
    def clip_info(self) -> ClipInfo:
        """What CLIP is in use; loads the model on first call if the config enables CLIP."""
        clip = self.config.clip
        if not clip.enabled:
            return ClipInfo(model=None, pretrained=None, available=False, reason="disabled by config")
        loaded = self._load_clip()
        return loaded.info if isinstance(loaded, ClipSimilarity) else loaded

    def _load_clip(self) -> ClipSimilarity | ClipInfo:
        if self._clip is None:
            self._clip = load_clip(self.config.clip, self._clip_weights)
        if isinstance(self._clip, ClipInfo) and self.config.clip.required:
            raise ClipUnavailableError(f"CLIP is required by the config but {self._clip.reason}")
        return self._clip

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
        """Score items, yielding results in input order as soon as each (and CLIP's batch) is done.

        ``skip`` holds the :attr:`ScoreResult.key` of results already made with this config
        (resuming an interrupted run): items with those keys are passed over. Cached results
        are yielded without touching the workers or the model.
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
                    # An unreadable file still passes through the pool (with no bytes) to keep order.
                    yield FileTask(file.data, item.prompt)

        pending: list[tuple[ScoreItem, FileBytes, ScoreResult | Analysis | InputError]] = []
        clip_batch = self.config.clip.batch_size if self.config.clip.enabled else 0
        # The pool runs in a thread ahead of this loop, so workers render while CLIP runs here.
        for outcome in _prefetch(self.pool.imap(tasks()), depth=4 * self._jobs):
            while entries[0][2] is not None:
                pending.append(entries.popleft())  # type: ignore[arg-type]
            item, file, _ = entries.popleft()
            pending.append((item, file, file.error or outcome))
            if sum(isinstance(p[2], Analysis) for p in pending) >= clip_batch:
                yield from self._finish(pending)
                pending = []
        pending.extend(entries)  # type: ignore[arg-type]  (all cached: the pool saw everything)
        yield from self._finish(pending)

    def _cached(self, item: ScoreItem, file: FileBytes) -> ScoreResult | None:
        if self._cache is None or file.error is not None:
            return None
        record = self._cache.get(self._cache.key(file.sha256, item.prompt, self.config_sha256, __version__))
        return None if record is None else ScoreResult.from_dict({**record, "path": item.path})

    def _finish(self, pending: list[tuple[ScoreItem, FileBytes, ScoreResult | Analysis | InputError]]) -> list[ScoreResult]:
        """Results for a run of entries: CLIP for the analysed ones in one batch, then combine."""
        analysed = [(item, outcome) for item, _, outcome in pending if isinstance(outcome, Analysis)]
        clip_components: dict[int, Component] = {}
        if analysed and self.config.clip.enabled:
            clip = self._load_clip()
            if isinstance(clip, ClipSimilarity):
                found = clip.components([o.image for _, o in analysed], [i.prompt for i, _ in analysed])
            else:
                found = [unavailable_component(self.config.clip, clip)] * len(analysed)
            clip_components = {id(o): c for (_, o), c in zip(analysed, found, strict=True)}
        results = []
        for item, file, outcome in pending:
            if isinstance(outcome, ScoreResult):
                results.append(outcome)
                continue
            result = self._result(item, file, outcome, clip_components.get(id(outcome)))
            if self._cache is not None and cacheable(result.to_dict(), self.config.clip.enabled):
                self._cache.put(self._cache.key(file.sha256, item.prompt, self.config_sha256, __version__), result.to_dict())
            results.append(result)
        return results

    def _result(self, item: ScoreItem, file: FileBytes, outcome: Analysis | InputError, clip: Component | None) -> ScoreResult:
        error, render, components = None, None, {}
        if isinstance(outcome, InputError):
            error = ErrorInfo(outcome.code, outcome.message)
            score, summary = None, f"{error.code}: {error.message}"
        else:
            if clip is not None:
                components["clip"] = clip
            components.update(outcome.components)
            render = outcome.render
            score, summary = combine(components, self.config.gates)
        return ScoreResult(
            path=item.path,
            sha256=file.sha256,
            prompt=item.prompt,
            status="ok" if error is None else "error",
            score=score,
            summary=summary,
            error=error,
            components=components,
            render=render,
            config_sha256=self.config_sha256,
            clip=self.clip_info,
            svgscore_version=__version__,
        )


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
