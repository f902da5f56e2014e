"""Per-file work in worker processes, bounded in wall-clock time and memory.

A hostile SVG can make a renderer spin or allocate without end. Each file is analysed in a
long-lived worker process under ``RLIMIT_AS``; a worker that overruns its deadline is killed
and replaced (the file gets ``render_timeout``), and one that dies (out of memory, a crash in
native code, a kill from outside) is replaced too and its file tried once more in the new one
(a second death gives ``render_error``). A worker that cannot set itself up (a plugin that will
not import, a model that will not load) is replaced; a few failures in a row stop the run.
Results come back in input order so output is the same on every run.
"""

from __future__ import annotations

import collections
import itertools
import multiprocessing.connection
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from .errors import InternalError, ItemError, RenderError, RenderTimeoutError, UsageError

T = TypeVar("T")
R = TypeVar("R")
_READY = "ready"
_FAILED = "failed"  # sent with the reason when the worker cannot set itself up (a plugin that will not import)
_MAX_STARTUP_FAILURES = 3


def _limit_resources(memory_mb: int) -> None:
    import resource

    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # The parent handles Ctrl-C and stops its workers; a worker must not die mid-file on it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _NetworkGuard:
    """An audit hook that refuses every network access in a worker, and counts the attempts.

    The renderer is already told to fetch nothing but ``data:`` URLs; this is the second
    wall, for whatever a library might still try.
    """

    EVENTS = frozenset({"socket.connect", "socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyaddr", "socket.sendto", "socket.sendmsg"})

    def __init__(self) -> None:
        self.attempts = 0

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if event in self.EVENTS or (event == "urllib.Request" and not str(args[0]).startswith("data:")):
            self.attempts += 1
            raise PermissionError(f"network access is blocked in svgscore workers ({event})")


def _worker_main(fd: int) -> None:
    """Entry point of a worker process: receive the factory, then serve tasks until EOF."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"  # one busy thread per worker: the workers are the parallelism
    conn = multiprocessing.connection.Connection(fd)
    factory, memory_mb = conn.recv()
    _limit_resources(memory_mb)
    try:
        work = factory()
    except Exception as exc:  # noqa: BLE001  (said to the parent, which stops the run with it)
        conn.send((_FAILED, str(exc) if isinstance(exc, UsageError) else f"{type(exc).__name__}: {exc}"))
        return
    guard = _NetworkGuard()
    sys.addaudithook(guard)
    conn.send(_READY)
    while True:
        try:
            item = conn.recv()
        except (EOFError, OSError):
            return  # the parent is gone
        attempts_before, started = guard.attempts, time.perf_counter()
        result = run_task(work, item, memory_mb)
        conn.send((result, time.perf_counter() - started, guard.attempts - attempts_before))


def run_task(work: Callable[[T], R], item: T, memory_mb: int) -> R | ItemError:
    """One task's result, or the :class:`ItemError` its row gets: what a worker sends back.

    Also the oracle of ``scripts/fuzz.py``, which runs tasks in-process: an ``InternalError``
    here is a bug in svgscore met by that input.
    """
    try:
        return work(item)
    except ItemError as exc:
        return exc
    except MemoryError:
        return RenderError(f"out of memory (worker limit {memory_mb} MB)")
    except RecursionError:
        return RenderError("document nesting too deep for the renderer")
    except Exception as exc:  # noqa: BLE001  (one file's bug must not end the batch)
        return InternalError(f"{type(exc).__name__}: {exc}"[:500])


@dataclass
class PoolStats:
    """What the pool saw: for robustness sweeps and benchmarks, never part of a score."""

    timeouts: int = 0
    deaths: int = 0
    network_attempts: int = 0  # refused by the workers' audit hook
    seconds: list[float] = field(default_factory=list)  # per completed file, inside the worker


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    conn: multiprocessing.connection.Connection
    ready: bool = False
    index: int | None = None  # the task it is working on
    task: Any = None  # ... and the task itself, to hand to another worker if this one dies
    deadline: float = 0.0

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self.conn.close()


class WorkerPool(Generic[T, R]):
    """``jobs`` worker processes, each running ``factory()`` once and then its result per task."""

    def __init__(self, factory: Callable[[], Callable[[T], R]], *, jobs: int, timeout_s: float, memory_mb: int) -> None:
        self._factory = factory
        self._jobs = max(1, jobs)
        self._timeout_s = timeout_s
        self._memory_mb = memory_mb
        self._workers: list[_Worker] = []
        self.stats = PoolStats()
        self._startup_failures = 0
        self._closed = False
        self._running = threading.Lock()
        self._retry: collections.deque[tuple[int, T]] = collections.deque()  # tasks whose worker died
        self._retried: set[int] = set()

    def __enter__(self) -> WorkerPool[T, R]:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        for worker in self._workers:
            worker.stop()
        self._workers.clear()

    def _spawn(self) -> _Worker:
        # A fresh interpreter, not fork (the parent may hold torch threads) and not
        # multiprocessing's spawn (which re-imports the caller's __main__ script).
        parent_end, child_end = socket.socketpair()
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        process = subprocess.Popen(
            [sys.executable, "-c", f"from scorer.isolation import _worker_main; _worker_main({child_end.fileno()})"],
            pass_fds=[child_end.fileno()],
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the parent only; it stops the workers
        )
        child_end.close()
        conn = multiprocessing.connection.Connection(parent_end.detach())
        conn.send((self._factory, self._memory_mb))
        return _Worker(process, conn)

    def imap(self, tasks: Iterable[T]) -> Iterator[R | ItemError]:
        """Results of ``tasks`` in input order; a failed task yields its :class:`ItemError`.

        Workers start with the first task (a run with nothing to do starts none) and the loop
        ends quietly if :meth:`close` is called from another thread meanwhile. One run at a
        time: a second ``imap`` waits until the first ends or is closed, and closing a run early
        stops the workers still busy with it, so its late results never reach the next run.
        """
        # A run abandoned mid-way frees the pool within one task's time limit; a run still held
        # open by its caller never does, and waiting for it would hang: say so instead.
        if not self._running.acquire(timeout=self._timeout_s + 5):
            raise UsageError(
                "this Scorer is busy with another scoring run that is still open: finish or close that "
                "generator first, or use a second Scorer"
            )
        try:
            yield from self._run(tasks)
        finally:
            for i, worker in enumerate(self._workers):
                if worker.index is not None:
                    self._replace(i)
            self._running.release()

    def _run(self, tasks: Iterable[T]) -> Iterator[R | ItemError]:
        pending = enumerate(tasks)
        first = next(pending, None)
        if first is None:
            return
        pending = itertools.chain([first], pending)
        exhausted = False
        done: dict[int, R | ItemError] = {}
        next_out = 0
        self._retry.clear()
        self._retried.clear()
        while not self._closed:
            # Keep every ready worker busy, but let no more than a few results wait for a slow one.
            for worker in self._idle_workers():
                if self._retry:
                    task = self._retry.popleft()
                elif exhausted or len(done) >= 4 * self._jobs:
                    break
                elif (task := next(pending, None)) is None:
                    exhausted = True
                    break
                worker.index, worker.task = task
                worker.deadline = time.monotonic() + self._timeout_s
                worker.conn.send(task[1])
            busy = [w for w in self._workers if w.index is not None]
            if exhausted and not busy and not self._retry and next_out not in done:
                return
            try:
                self._collect(done)
            except (OSError, ValueError):
                if self._closed:
                    return  # closed under us: connections went away mid-wait
                raise
            while next_out in done:
                yield done.pop(next_out)
                next_out += 1

    def _idle_workers(self) -> list[_Worker]:
        while len(self._workers) < self._jobs:
            self._workers.append(self._spawn())
        return [w for w in self._workers if w.ready and w.index is None]

    def _collect(self, done: dict[int, R | ItemError]) -> None:
        now = time.monotonic()
        busy = [w.deadline for w in self._workers if w.index is not None]
        timeout = max(0.0, min(busy) - now) if busy else None
        ready = multiprocessing.connection.wait([w.conn for w in self._workers], timeout=timeout)
        for i, worker in enumerate(self._workers):
            if worker.conn in ready:
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):
                    self.stats.deaths += 1
                    if not worker.ready:
                        self._startup_failed(
                            f"worker processes die while starting (exit code {worker.process.poll()}); "
                            f"is render.memory_mb ({self._memory_mb}) too low?"
                        )
                    if worker.index is not None and worker.index not in self._retried:
                        # Killed from outside (the OOM killer, an operator) or by this file: a
                        # fresh worker tries it once more, and a second death is the file's.
                        self._retried.add(worker.index)
                        self._retry.append((worker.index, worker.task))
                    elif worker.index is not None:
                        done[worker.index] = RenderError(
                            f"worker process died twice on this file (exit code {worker.process.poll()}); "
                            f"likely the {self._memory_mb} MB memory limit or a renderer crash"
                        )
                    self._replace(i)
                    continue
                if message == _READY:
                    worker.ready = True
                    self._startup_failures = 0
                elif isinstance(message, tuple) and message[0] == _FAILED:
                    # A plugin that will not import fails the same way in every worker; a model
                    # that failed to load in one may load in the next. Replace it, a few times.
                    self._startup_failed(f"worker processes cannot start: {message[1]}")
                    self._replace(i)
                elif worker.index is not None:
                    done[worker.index], seconds, attempts = message
                    self.stats.seconds.append(seconds)
                    self.stats.network_attempts += attempts
                    worker.index, worker.task = None, None
            elif worker.index is not None and time.monotonic() >= worker.deadline:
                self.stats.timeouts += 1
                done[worker.index] = RenderTimeoutError(f"analysis exceeded {self._timeout_s:g} s and was stopped")
                self._replace(i)

    def _startup_failed(self, reason: str) -> None:
        """Count a worker that could not start; stop the run when they keep failing in a row."""
        self._startup_failures += 1
        if self._startup_failures >= _MAX_STARTUP_FAILURES:
            raise UsageError(reason)

    def _replace(self, i: int) -> None:
        self._workers[i].stop()
        if not self._closed:
            self._workers[i] = self._spawn()
