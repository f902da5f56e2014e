"""Worker processes: a file that overruns its time limit is stopped; the batch goes on."""

import pytest

from scorer import ScoreItem, Scorer, UsageError

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
