"""The public entry points: a reusable :class:`Scorer` and one-call helpers around it."""

from __future__ import annotations

import functools
import os
from collections.abc import Container, Iterable, Iterator
from pathlib import Path
from typing import Any

from . import __version__
from .combine import combine
from .config import DEFAULT_PROMPT, Config, load_config
from .errors import ClipUnavailableError, InputError
from .inputs import FileBytes, ScoreItem, discover
from .isolation import WorkerPool
from .measure.clip import ClipSimilarity, load_clip, resolve_weights, unavailable_component
from .pipeline import Analysis, FileTask, make_analyzer
from .record import ClipInfo, ErrorInfo, ResultKey, ScoreResult

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
    ) -> None:
        self.config = load_config(config)
        self._clip_weights = resolve_weights(self.config.clip, clip_weights)
        settings = self.config
        if self._clip_weights and settings.clip.enabled:
            # The checkpoint in use is part of what the score means, so it is part of the hash.
            settings = settings.model_copy(update={"clip": settings.clip.model_copy(update={"weights": self._clip_weights})})
        self.config_sha256 = settings.sha256()
        self._gates = {name: c.gate for name, c in self.config.checks.items() if c.gate is not None}
        self._jobs = jobs or os.cpu_count() or 1
        self._pool: WorkerPool[FileTask, Analysis] | None = None
        self._clip: ClipSimilarity | ClipInfo | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

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
        return next(self.score_items([ScoreItem(path=path, prompt=prompt, data=data)]))

    def score_file(self, path: str | os.PathLike[str], prompt: str = DEFAULT_PROMPT) -> ScoreResult:
        return next(self.score_items([ScoreItem(path=str(path), prompt=prompt)]))

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
        """Score items in order, yielding each result as soon as it and all before it are done.

        ``skip`` holds the :attr:`ScoreResult.key` of results already made with this config
        (resuming an interrupted run): items with those keys are passed over.
        """
        in_flight: dict[int, tuple[ScoreItem, FileBytes]] = {}

        def tasks() -> Iterator[FileTask]:
            sent = 0
            for item in items:
                file = item.read(self.config.limits)
                if (item.path, file.sha256, item.prompt) in skip:
                    continue
                in_flight[sent] = (item, file)
                sent += 1
                # An unreadable file still passes through the pool (with no bytes) to keep order.
                yield FileTask(file.data, item.prompt)

        for i, outcome in enumerate(self.pool.imap(tasks())):
            item, file = in_flight.pop(i)
            yield self._finish(item, file, file.error or outcome)

    def _finish(self, item: ScoreItem, file: FileBytes, outcome: Analysis | InputError) -> ScoreResult:
        error, render, components = None, None, {}
        if isinstance(outcome, InputError):
            error = ErrorInfo(outcome.code, outcome.message)
            score, summary = None, f"{error.code}: {error.message}"
        else:
            if self.config.clip.enabled:
                clip = self._load_clip()
                components["clip"] = (
                    clip.component(outcome.image, item.prompt)
                    if isinstance(clip, ClipSimilarity)
                    else unavailable_component(self.config.clip, clip)
                )
            components.update(outcome.components)
            render = outcome.render
            score, summary = combine(components, self._gates)
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
