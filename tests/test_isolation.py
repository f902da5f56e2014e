"""Worker processes: a file that overruns its time limit is stopped; the batch goes on."""

from pathlib import Path

import pytest

from scorer import ScoreItem, Scorer, UsageError
from scorer.isolation import WorkerPool

from .conftest import LADDER, STRUCTURAL, svg


def test_timeouts_become_error_rows_and_workers_are_replaced():
    config = {**STRUCTURAL, "render": {"timeout_s": 0.001}}
    with Scorer(config, jobs=1) as scorer:
        results = list(scorer.score_items(ScoreItem(str(p), "a pelican riding a bicycle") for p in LADDER[:3]))
        assert [r.error.code for r in results] == ["render_timeout"] * 3
        assert scorer.pool.stats.timeouts == 3
    # The same files with a sane limit score normally.
    with Scorer(STRUCTURAL, jobs=1) as scorer:
        assert all(r.ok for r in scorer.score_items(ScoreItem(str(p), "x") for p in LADDER[:3]))


def test_results_keep_input_order_with_several_workers(structural):
    paths = [str(p) for p in LADDER] * 3
    results = list(structural.score_items(ScoreItem(p, "a pelican riding a bicycle") for p in paths))
    assert [r.path for r in results] == paths
    n = len(LADDER)
    assert results[:n] == results[n : 2 * n] == results[2 * n :]


def test_a_second_run_while_one_is_held_open_is_a_clear_error_not_a_hang():
    with Scorer({**STRUCTURAL, "render": {"timeout_s": 1}}, jobs=1) as scorer:
        held = scorer.score_items(ScoreItem(str(p), "a pelican riding a bicycle") for p in LADDER * 3)
        next(held)  # the caller keeps this run open
        with pytest.raises(UsageError, match="busy with another scoring run"):
            scorer.score_svg(svg('<rect width="10" height="10"/>'))
        held.close()
        assert scorer.score_svg(svg('<rect width="100" height="100"/>')).ok


def _resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


_pinned: list[bytes] = []


def _scratch_then_measure(task: str) -> float:
    """``fill``: allocate 200 MB in 1 kB blocks (malloc's heap, not mmap), keep only the last
    block (it pins the heap's top, as a long-lived object does) and free the rest; return the
    resident size with them freed. ``measure``: the resident size now."""
    if task == "fill":
        blocks = [bytes(1000) + bytes([i % 251]) for i in range(200_000)]
        _pinned.append(blocks[-1])
        del blocks
    return _resident_mb()


def _scratch_worker():
    return _scratch_then_measure


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc/self/status")
def test_a_worker_hands_a_files_freed_memory_back_before_the_next(tmp_path):
    """Freed below a live block, glibc keeps the pages: without the trim after each file the
    second reading stays ~200 MB up (a worker's resident size then only grows)."""
    with WorkerPool(_scratch_worker, jobs=1, timeout_s=120, memory_mb=2048) as pool:
        before, freed, after = list(pool.imap(["measure", "fill", "measure"]))
    assert freed > before + 150  # the test's premise: freeing alone gave nothing back
    assert after < before + 50
