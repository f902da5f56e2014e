"""Cross-machine check: the fixtures' scores under the packaged structural config match the
committed golden file (tests/golden/structural_scores.json) within a stated tolerance.

Tolerance, and which parts are platform-dependent (cairo anti-aliasing, float rounding, OCR):
see :mod:`tests.golden_scores`. An intended change of scores (new weights, a new check, a
renderer upgrade you accept): run ``make golden``, which rewrites the file and prints what moved,
and commit it with the change.
"""

import copy
import json

import pytest

from .golden_scores import GOLDEN, REGENERATE, SCORE_TOLERANCE, VALUE_TOLERANCE, golden_of, judge_changes, moves, score_fixtures


@pytest.fixture(scope="module")
def current(tmp_path_factory):
    return golden_of(score_fixtures(tmp_path_factory.mktemp("golden")))


def test_fixture_scores_match_the_golden_file(current):
    assert GOLDEN.exists(), f"no golden file: run `{REGENERATE}` and commit {GOLDEN.name}"
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
    moved = moves(golden, current)
    assert not moved, (
        f"{len(moved)} fixture(s) scored differently from {GOLDEN.name} "
        f"(tolerance {SCORE_TOLERANCE} points, {VALUE_TOLERANCE} per component):\n  " + "\n  ".join(moved)
        + "\nwhat differs in the judge since the golden file was made:\n  " + ("\n  ".join(judge_changes(golden, current)) or "nothing recorded")
        + f"\nIf the change is intended (weights, a check, an accepted dependency upgrade): run `{REGENERATE}` and commit the file."
    )
    assert len(current["files"]) == len(golden["files"]) >= 20  # every fixture folder was scored


def test_the_comparison_catches_what_users_would_see(current):
    """The check itself can fail: a score moved by a tenth of a point, a component by a hundredth,
    a file turned into an error row, a new component; but not a last-digit rounding difference."""
    path = next(p for p, f in current["files"].items() if f["status"] == "ok" and f["score"])
    name = next(iter(current["files"][path]["components"]))

    def changed(edit):
        other = copy.deepcopy(current)
        edit(other["files"][path])
        return moves(current, other)

    assert changed(lambda f: f.update(score=f["score"] + 0.1)) == [f"{path}: score {current['files'][path]['score']:.4f} → {current['files'][path]['score'] + 0.1:.4f}"]
    assert changed(lambda f: f["components"].update({name: (f["components"][name] or 0) + 0.01}))
    assert changed(lambda f: f.update(status="error", error="render_error", score=None))
    assert changed(lambda f: f["components"].update(craft=0.5))
    assert not changed(lambda f: f.update(score=f["score"] + 1e-4))
    assert moves(current, copy.deepcopy(current)) == []
