"""Measures for the Ray executor's tests (tests/test_ray.py), loaded by file path through ``plugins:``.

* ``hazard`` (per file): for a prompt naming one, does to its worker what a hostile file does to
  a renderer — hangs, allocates without end, or crashes the process.
* ``stall_worker`` (per file) and ``stall_actor`` (batched): on the first file whose prompt is
  :data:`KILL` (claimed once across all processes by creating a file in ``signal_dir``), write the
  pid of the process the test should kill — the Ray worker holding this isolated worker, or the
  actor itself — and wait to be killed. The test kills on seeing the file: no clock involved.
  Once claimed, they measure like any check, so a retried file scores as it would have.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from scorer.measure.registry import BatchItem, Measurement, MeasureParams, batched, check

KILL = "a pelican riding a bicycle, interrupted once"
HAZARDS = {"hang": "a pelican that hangs the renderer", "memory": "a pelican that eats all memory", "crash": "a pelican that crashes the renderer"}
_HANG_GUARD_S = 300.0  # a test that never kills must not hang forever


class SignalParams(MeasureParams):
    signal_dir: str


def _claim(folder: str, what: str) -> bool:
    try:
        os.close(os.open(os.path.join(folder, f"{what}.claimed"), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _announce(folder: str, what: str, pid: int) -> None:
    target = os.path.join(folder, f"{what}.pid")
    with open(target + ".tmp", "w") as stream:
        stream.write(str(pid))
    os.replace(target + ".tmp", target)  # the test never reads half a pid


@check("hazard", "test: hangs, exhausts memory or crashes its worker when the prompt says so")
def hazard(drawing, params) -> Measurement:
    if drawing.prompt == HAZARDS["hang"]:
        while True:
            time.sleep(1)
    if drawing.prompt == HAZARDS["memory"]:
        hoard = []
        while True:
            hoard.append(bytearray(64 << 20))  # until RLIMIT_AS says no
    if drawing.prompt == HAZARDS["crash"]:
        os.abort()
    return Measurement(1.0, "no hazard asked for")


@check("stall_worker", "test: the first KILL file waits for the test to kill the Ray worker holding it", params=SignalParams)
def stall_worker(drawing, params: SignalParams) -> Measurement:
    if drawing.prompt == KILL and _claim(params.signal_dir, "worker"):
        ray_worker = os.getppid()  # this is svgscore's isolated worker; its parent is the Ray worker process
        _announce(params.signal_dir, "worker", ray_worker)
        deadline = time.monotonic() + _HANG_GUARD_S
        while os.getppid() == ray_worker and time.monotonic() < deadline:
            time.sleep(0.05)
        os._exit(0)  # orphaned: the Ray worker is gone, and so is whoever would read our answer
    return Measurement(1.0, "measured")


class _Stall:
    provenance = {"test": "stall_actor"}

    def __init__(self, params: SignalParams) -> None:
        self.params = params

    def measure(self, items: Sequence[BatchItem]) -> list[Measurement]:
        if any(item.prompt == KILL for item in items) and _claim(self.params.signal_dir, "actor"):
            _announce(self.params.signal_dir, "actor", os.getpid())
            time.sleep(_HANG_GUARD_S)
            raise RuntimeError("stall_actor was never killed")
        return [Measurement(0.5 if item.prompt == KILL else 0.25, "measured") for item in items]


@batched("stall_actor", "test: the first batch with a KILL file waits for the test to kill this actor", params=SignalParams)
def stall_actor(params: SignalParams) -> _Stall:
    return _Stall(params)
