"""Micro-batching: requests from many threads (or event-loop tasks) scored in one pass.

A :class:`scorer.Scorer` runs one scoring pass at a time, and CLIP is cheapest per image in full
batches. The batcher owns the scorer from one thread: it takes the first waiting request, keeps
collecting until ``max_batch`` items are waiting or ``max_wait_s`` has passed since that first
one, and scores everything collected with a single ``score_items`` call. Each request's future
is resolved as soon as its own records are out, in input order.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..api import Scorer
from ..inputs import ScoreItem
from ..record import ScoreResult


@dataclass
class _Request:
    items: Sequence[ScoreItem]
    future: concurrent.futures.Future[list[ScoreResult]] = field(default_factory=concurrent.futures.Future)


@dataclass(frozen=True)
class BatchStats:
    batches: int  # scoring passes run
    items: int  # items scored
    queued: int  # items submitted and not yet in a running pass
    cancelled: int  # requests dropped before their pass started (the client went away)


class MicroBatcher:
    """Scores submitted item lists in shared passes through one scorer. ``close()`` to stop."""

    def __init__(self, scorer: Scorer, *, max_batch: int = 64, max_wait_s: float = 0.02) -> None:
        if max_batch < 1 or max_wait_s < 0:
            raise ValueError("max_batch must be at least 1 and max_wait_s not negative")
        self._scorer = scorer
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._batches = self._items = self._queued = self._cancelled = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="svgscore-batcher", daemon=True)
        self._thread.start()

    @property
    def stats(self) -> BatchStats:
        with self._lock:
            return BatchStats(self._batches, self._items, self._queued, self._cancelled)

    def submit(self, items: Sequence[ScoreItem]) -> concurrent.futures.Future[list[ScoreResult]]:
        """Queue ``items``; the future gives their results in order. Cancel it to drop the
        request if its pass has not started yet."""
        request = _Request(list(items))
        with self._lock:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._queued += len(request.items)
        self._queue.put(request)
        return request.future

    def close(self) -> None:
        """Finish the passes already queued, then stop the thread (the scorer stays open)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            batch, count = [first], len(first.items)
            deadline = time.monotonic() + self._max_wait_s
            while count < self._max_batch:
                try:
                    request = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if request is None:
                    stopping = True
                    break
                batch.append(request)
                count += len(request.items)
            self._score(batch)

    def _score(self, batch: list[_Request]) -> None:
        live = [r for r in batch if r.future.set_running_or_notify_cancel()]
        items = [item for r in live for item in r.items]
        with self._lock:
            self._queued -= sum(len(r.items) for r in batch)
            self._cancelled += len(batch) - len(live)
            if items:
                self._batches += 1
                self._items += len(items)
        if not items:
            for r in live:
                r.future.set_result([])
            return
        try:
            results = self._scorer.score_items(items)
            for r in live:
                r.future.set_result([next(results) for _ in r.items])
            for _ in results:  # let the generator finish its pass (nothing is left, by count)
                pass
        except BaseException as exc:  # noqa: BLE001  (handed to every waiting caller, never lost)
            for r in live:
                if not r.future.done():
                    r.future.set_exception(exc)
