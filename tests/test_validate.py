"""svgscore validate: the statistics, the label files, the figures and the command."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from scorer.combine import combine
from scorer.errors import UsageError
from scorer.inputs import ScoreItem
from scorer.record import Component, Provenance, ScoreResult
from scorer.validate.cli import (
    load_labels,
    ranking_figures,
    score_without,
    vote_figures,
)
from scorer.validate.stats import (
    agreement,
    bootstrap_ci,
    bradley_terry,
    connected_groups,
    preference,
    rank_correlation,
)
from scorer.validate.votes import label_kind, read_ranking, read_votes

from .conftest import FIXTURES, LADDER, REPO

# -- statistics -------------------------------------------------------------------------------


def test_preference():
    assert preference(2, 1) == "a"
    assert preference(1, 2) == "b"
    assert preference(1, 1) == "tie"
    assert preference(None, 1) is None


def test_bradley_terry_recovers_a_transitive_order():
    # 0 > 1 > 2 > 3, every pair voted once, presented in both orientations.
    votes = [(i, j, "a") if k % 2 else (j, i, "b") for k, (i, j) in enumerate((i, j) for i in range(4) for j in range(i + 1, 4))]
    strengths = bradley_terry(4, votes)
    assert list(np.argsort(-strengths)) == [0, 1, 2, 3]
    assert np.all(np.diff(strengths) < 0)


def test_bradley_terry_follows_win_rates_not_just_wins():
    # 0 beats 1 three times out of four; 1 beats 2 three times out of four.
    votes = [(0, 1, "a")] * 3 + [(0, 1, "b")] + [(1, 2, "a")] * 3 + [(1, 2, "b")]
    strengths = bradley_terry(3, votes)
    assert strengths[0] > strengths[1] > strengths[2]
    assert strengths[0] - strengths[1] == pytest.approx(strengths[1] - strengths[2], abs=1e-6)


def test_bradley_terry_ties_and_unvoted_items_sit_at_the_phantom_level():
    strengths = bradley_terry(3, [(0, 1, "tie"), (1, 0, "tie")])
    assert strengths == pytest.approx([0.0, 0.0, 0.0], abs=1e-8)


def test_connected_groups():
    groups = connected_groups(5, [(0, 1), (1, 2), (3, 4)])
    assert groups[0] == groups[1] == groups[2] != groups[3] == groups[4]


def test_agreement_of_a_perfect_and_of_an_inverted_judge():
    votes = [("a", 3.0, 1.0), ("b", 1.0, 2.0), ("a", 5.0, 0.0)]
    assert agreement(votes).value == 1.0
    inverted = [(w, b, a) for w, a, b in votes]
    assert agreement(inverted).value == 0.0


def test_agreement_counts_judge_ties_apart_and_rejects_human_ties():
    found = agreement([("a", 1.0, 1.0), ("a", None, 2.0), ("a", 2.0, 1.0), ("b", 2.0, 1.0)])
    assert (found.value, found.used, found.judge_ties) == (0.5, 2, 2)
    with pytest.raises(ValueError):
        agreement([("tie", 1.0, 2.0)])
    nothing = agreement([])
    assert math.isnan(nothing.value) and nothing.used == 0


def test_bootstrap_interval_contains_the_estimate_and_is_deterministic():
    hits = [True] * 30 + [False] * 10
    low, high = bootstrap_ci(hits)
    assert low < 0.75 < high
    assert 0.5 < low and high < 0.95
    assert bootstrap_ci(hits) == (low, high)
    assert bootstrap_ci(hits, seed=1) != (low, high)
    assert bootstrap_ci([True] * 5) == (1.0, 1.0)
    assert all(math.isnan(x) for x in bootstrap_ci([]))


def test_rank_correlation_signs_and_groups():
    judge = {k: float(k) for k in range(6)}
    assert rank_correlation(judge, judge).spearman == pytest.approx(1.0)
    reversed_ = rank_correlation(judge, {k: -v for k, v in judge.items()})
    assert (reversed_.spearman, reversed_.kendall, reversed_.n) == (pytest.approx(-1.0), pytest.approx(-1.0), 6)
    # Within each group the order agrees, but the reference is offset per group: the pooled
    # figure without groups is dragged down, the within-group figure is perfect.
    reference = {0: 10.0, 1: 11.0, 2: 12.0, 3: 0.0, 4: 1.0, 5: 2.0}
    groups = {k: k // 3 for k in judge}
    assert rank_correlation(judge, reference).spearman < 0
    within = rank_correlation(judge, reference, groups)
    assert (within.spearman, within.kendall, within.n, within.groups) == (pytest.approx(1.0), pytest.approx(1.0), 6, 2)


def test_rank_correlation_leaves_out_constant_and_small_groups():
    judge = {0: 1.0, 1: 1.0, 2: 1.0, 3: 1.0, 4: 2.0}
    reference = {0: 1.0, 1: 2.0, 2: 3.0, 3: 1.0, 4: 2.0}
    found = rank_correlation(judge, reference, {0: "x", 1: "x", 2: "x", 3: "y", 4: "y"})
    assert found.n == 0 and math.isnan(found.spearman)


# -- label files --------------------------------------------------------------------------------


def test_read_votes_resolves_paths_against_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    votes = tmp_path / "sub" / "votes.csv"
    votes.write_text("a,b,winner,prompt\nx.svg,../y.svg,A,a heron\nx.svg,z.svg,tie,\n")
    found = read_votes(votes)
    assert found[0].a == tmp_path / "sub" / "x.svg" and found[0].b == tmp_path / "sub" / "../y.svg"
    assert (found[0].winner, found[0].prompt) == ("a", "a heron")
    assert (found[1].winner, found[1].prompt) == ("tie", None)
    assert label_kind(votes) == "votes"


@pytest.mark.parametrize("body", ["a,b,winner\nx.svg,y.svg,left\n", "a,b,winner\nx.svg,,a\n", "a,b\nx.svg,y.svg\n"])
def test_malformed_votes_are_usage_errors(tmp_path, body):
    votes = tmp_path / "votes.csv"
    votes.write_text(body)
    with pytest.raises(UsageError):
        read_votes(votes)


def test_rankings_csv_and_plain_list(tmp_path):
    csv_file = tmp_path / "ranks.csv"
    csv_file.write_text("path,rank,group\nx.svg,2,g1\ny.svg,1,g1\n")
    assert label_kind(csv_file) == "ranking"
    assert [(r.path.name, r.rank, r.group) for r in read_ranking(csv_file)] == [("x.svg", 2.0, "g1"), ("y.svg", 1.0, "g1")]
    plain = tmp_path / "order.txt"
    plain.write_text("# best first\nbest.svg\n\nworst.svg\n")
    assert [(r.path.name, r.rank) for r in read_ranking(plain)] == [("best.svg", 1.0), ("worst.svg", 2.0)]
    with pytest.raises(UsageError):
        label_kind(plain)  # a plain list is only read when named by --ranking
    csv_file.write_text("path,rank\nx.svg,first\n")
    with pytest.raises(UsageError):
        read_ranking(csv_file)


# -- figures --------------------------------------------------------------------------------------


def _result(good: float, bad: float, *, ok: bool = True) -> ScoreResult:
    """A result with two equally weighted components, "good" and "bad"."""
    components = {"good": Component(good, 1.0, ""), "bad": Component(bad, 1.0, "")}
    return ScoreResult(
        path=None, sha256="", prompt="p", status="ok" if ok else "error", score=combine(components, {})[0] if ok else None,
        summary="", error=None, components=components, render=None, config_sha256="",
        provenance=Provenance("test", None, None, "", {}, "", ""), svgscore_version="test",
    )  # fmt: skip


def test_vote_figures_skips_by_reason_and_tells_helpful_from_harmful_components():
    # People prefer a over b each time; "good" agrees, "bad" disagrees but weighs less in total.
    results = {
        ("a1", "p"): _result(0.9, 0.2), ("b1", "p"): _result(0.1, 0.4),
        ("a2", "p"): _result(0.8, 0.1), ("b2", "p"): _result(0.3, 0.3),
        ("a3", "p"): _result(0.7, 0.5), ("b3", "p"): _result(0.2, 0.6),
        ("err", "p"): _result(0, 0, ok=False), ("same", "p"): _result(0.9, 0.2),
    }  # fmt: skip
    key = {name: (name, "p") for name, _ in results}
    votes = [
        (key["a1"], key["b1"], "a"), (key["a2"], key["b2"], "a"), (key["b3"], key["a3"], "b"),
        (key["a1"], ("missing", "p"), "a"), (key["a1"], key["err"], "a"), (key["a1"], key["b2"], "tie"),
        (key["a1"], key["same"], "a"),
    ]  # fmt: skip
    figures = vote_figures(votes, results, {})
    assert figures["skipped"] == {"missing_file": 1, "error_row": 1, "tie": 1, "judge_tie": 1}
    assert figures["used"] == 3 and figures["agreement"]["value"] == 1.0
    good, bad = figures["components"]["good"], figures["components"]["bad"]
    assert good["alone"]["value"] == 1.0 and bad["alone"]["value"] == 0.0
    assert good["without"]["value"] < figures["agreement"]["value"] <= bad["without"]["value"]


def test_ranking_figures():
    results = {(name, "p"): _result(value, value) for name, value in (("x", 0.9), ("y", 0.5), ("z", 0.1), ("e", 0.0))}
    results[("e", "p")] = _result(0, 0, ok=False)
    ranking = [(("x", "p"), 1.0, ""), (("y", "p"), 2.0, ""), (("z", "p"), 3.0, ""), (("e", "p"), 4.0, ""), (("gone", "p"), 5.0, "")]
    figures = ranking_figures(ranking, results)
    assert figures["skipped"] == {"missing_file": 1, "error_row": 1}
    assert figures["correlation"]["spearman"] == pytest.approx(1.0) and figures["correlation"]["n"] == 3


# -- the command ------------------------------------------------------------------------------------


def _validate(*args, cwd=REPO):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "scorer", "validate", *args], check=False, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def labels(tmp_path_factory):
    """Votes and a ranking over the ladder (higher level wins), plus a missing file, a broken file and a tie."""
    folder = tmp_path_factory.mktemp("labels")
    ladder = [os.path.relpath(p, folder) for p in LADDER]
    rows = [f"{ladder[j]},{ladder[i]},a" for i in range(len(ladder)) for j in range(i + 1, len(ladder))]
    rows += [f"{ladder[0]},nowhere.svg,b", f"{ladder[-1]},{os.path.relpath(FIXTURES / 'broken' / 'empty.svg', folder)},a", f"{ladder[1]},{ladder[2]},tie"]
    (folder / "votes.csv").write_text("a,b,winner\n" + "\n".join(rows) + "\n")
    (folder / "order.txt").write_text("\n".join(reversed(ladder)) + "\n")
    heavy = folder / "count_heavy.yaml"
    heavy.write_text("clip:\n  enabled: false\nchecks:\n  renders: {weight: 0.0, gate: 1.0}\n  element_count: {weight: 1.0}\n  closed_paths: {weight: 0.1}\n")
    return folder


def test_validate_json_two_configs_side_by_side(labels, structural):
    proc = _validate(str(labels / "votes.csv"), "--ranking", str(labels / "order.txt"), "--config", "structural", "--config", str(labels / "count_heavy.yaml"), "--format", "json", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [c["label"] for c in report["configs"]] == ["structural", "count_heavy"]
    assert all(c["batched"] == {} for c in report["configs"])
    votes, ranking = report["labels"]
    n = len(LADDER)
    first = votes["figures"][0]
    assert first["votes"] == n * (n - 1) // 2 + 3 and first["files"] == n + 1  # the broken file exists
    assert first["skipped"]["missing_file"] == 1 and first["skipped"]["error_row"] == 1 and first["skipped"]["tie"] == 1
    # The reported agreement is the judge's own scores compared with the ladder order.
    scores = [r.score for r in structural.score_items([ScoreItem(str(p), "a pelican riding a bicycle") for p in LADDER])]
    decided = [(scores[j], scores[i]) for i in range(n) for j in range(i + 1, n) if scores[i] != scores[j]]
    assert first["used"] == len(decided) and first["skipped"]["judge_tie"] == n * (n - 1) // 2 - len(decided)
    assert first["agreement"]["value"] == pytest.approx(sum(a > b for a, b in decided) / len(decided))
    low, high = first["agreement"]["ci95"]
    assert low <= first["agreement"]["value"] <= high
    assert set(first["components"]) >= {"bicycle_present", "element_count"}
    assert votes["figures"][1]["components"].keys() == {"renders", "element_count", "closed_paths"}
    # The ranking lists the ladder best first, so its correlation equals the votes' Bradley–Terry one.
    assert ranking["kind"] == "ranking" and ranking["figures"][0]["files"] == n
    assert ranking["figures"][0]["correlation"]["spearman"] == pytest.approx(first["bradley_terry"]["spearman"])


def test_validate_table_and_usage_errors(labels):
    proc = _validate(str(labels / "votes.csv"), "--config", "structural", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    assert "agreement [95% CI]" in proc.stdout and "skipped: judge tie" in proc.stdout and "Bradley–Terry" in proc.stdout
    assert _validate().returncode == 2
    assert _validate(str(labels / "order.txt")).returncode == 2  # a plain list needs --ranking


def test_prompts_come_from_the_row_then_the_manifest_then_the_default(tmp_path):
    votes = tmp_path / "votes.csv"
    votes.write_text("a,b,winner,prompt\nx.svg,y.svg,a,a heron\nx.svg,y.svg,b,\n")
    ranking = tmp_path / "order.txt"
    ranking.write_text("x.svg\ny.svg\n")
    manifest = {str((tmp_path / "y.svg").resolve()): "a crane"}
    found = load_labels([votes], [ranking], manifest, "a pelican")
    x, y = str((tmp_path / "x.svg").resolve()), str((tmp_path / "y.svg").resolve())
    assert found[0].votes == [((x, "a heron"), (y, "a heron"), "a"), ((x, "a pelican"), (y, "a crane"), "b")]
    assert found[1].votes is None and [key for key, _, _ in found[1].ranking] == [(x, "a pelican"), (y, "a crane")]


def test_a_component_is_removed_with_its_gate():
    result = _result(0.9, 0.1)
    assert combine(result.components, {"bad": 0.5})[0] == 0.0  # the gate closes
    assert score_without(result, "bad", {"bad": 0.5}) == pytest.approx(90.0)
    assert score_without(result, "good", {"bad": 0.5}) == 0.0
