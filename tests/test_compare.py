"""svgscore compare: bootstrap intervals, pairwise verdicts, error policy, model naming, CLI."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from scorer.cli import main
from scorer.compare.leaderboard import (
    Sample,
    collect_records,
    default_grouping,
    leaderboard,
    read_results,
)
from scorer.errors import UsageError

from .records import record


def samples(model, scores, prompts=("p",)):
    """One Sample per (prompt, score): scores given per prompt as a list of lists, or one flat list."""
    per_prompt = scores if isinstance(scores[0], list) else [scores]
    return [
        Sample(model, prompt, None if s is None else float(s), {"clip": None if s is None else s / 100}, None if s is not None else "parse_error")
        for prompt, values in zip(prompts, per_prompt, strict=False)
        for s in values
    ]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


RNG = np.random.default_rng(7)
STRONG = list(np.round(RNG.normal(80, 5, 12), 2))
WEAK = list(np.round(RNG.normal(60, 5, 12), 2))
CLOSE = [round(v - 0.5, 2) for v in reversed(STRONG)]  # the same spread, half a point lower


def test_ranks_models_and_intervals_bracket_the_mean():
    board = leaderboard(samples("weak", WEAK) + samples("strong", STRONG))
    assert [m.model for m in board.models] == ["strong", "weak"]
    for m in board.models:
        assert m.interval.low < m.mean < m.interval.high
        assert m.n == 12 and m.errors == 0 and m.prompts == 1
    assert board.models[0].mean == pytest.approx(np.mean(STRONG), abs=1e-3)
    assert board.models[0].components["clip"] == pytest.approx(np.mean(STRONG) / 100, abs=1e-3)


def test_separable_pair_gets_a_verdict_and_a_high_win_probability():
    [pair] = leaderboard(samples("strong", STRONG) + samples("weak", WEAK)).pairs
    assert pair.separable and pair.difference_interval.low > 0
    assert pair.win_probability > 0.9 and pair.win_interval.low > 0.5
    assert pair.verdict.startswith("strong draws better than weak: +")


def test_close_models_cannot_be_separated_and_the_sentence_says_so():
    [pair] = leaderboard(samples("a", STRONG) + samples("b", CLOSE)).pairs
    assert not pair.separable and pair.difference_interval.includes(0)
    assert pair.verdict.startswith("The data cannot separate")


def test_one_sample_gives_no_interval_and_a_too_few_verdict():
    board = leaderboard(samples("a", [90]) + samples("b", [10]))
    assert all(m.interval is None for m in board.models)
    [pair] = board.pairs
    assert not pair.separable and pair.difference == 80 and pair.win_probability == 1.0
    assert pair.verdict.startswith("Too few samples to compare a and b (1 and 1")
    assert board.sentences()[0] == pair.verdict


def test_sentences_judge_each_step_and_summarize_the_unjudgeable_ones():
    board = leaderboard(samples("a", STRONG) + samples("b", WEAK) + samples("c", [5]) + samples("d", [1]))
    lines = board.sentences()
    assert lines[0].startswith("a draws better than b")
    assert lines[1] == (
        "Too few samples to judge 2 of the 3 steps of this ranking: c, d have a single sample, "
        "and a single drawing says nothing about how a model draws in general; score more samples."
    )
    assert lines[2].startswith("Error rows count as score 0. Intervals: 95%")


def test_deterministic_and_independent_of_other_models():
    first = leaderboard(samples("a", STRONG) + samples("b", WEAK))
    again = leaderboard(samples("a", STRONG) + samples("b", WEAK))
    assert first == again
    with_third = leaderboard(samples("a", STRONG) + samples("b", WEAK) + samples("c", CLOSE))
    assert with_third.models[0] == first.models[0]
    assert [p for p in with_third.pairs if (p.a, p.b) == ("a", "b")] == first.pairs
    assert leaderboard(samples("a", STRONG), seed=1).models[0].interval != first.models[0].interval


def test_prompts_weigh_equally_and_are_resampled():
    # 10 samples on an easy prompt, 2 on a hard one: the mean is of the two prompt means.
    board = leaderboard(samples("m", [[90] * 10, [10, 10]], prompts=("easy", "hard")))
    [m] = board.models
    assert m.mean == 50 and m.prompts == 2 and m.n == 12
    # No spread within prompts, so all the width comes from resampling the two prompts.
    assert m.interval.low == 10 and m.interval.high == 90


def test_pairs_use_shared_prompts_only():
    a = samples("a", [[80, 82], [40, 42]], prompts=("p1", "p2"))
    b = samples("b", [[70, 72]], prompts=("p1",))
    [pair] = leaderboard(a + b).pairs
    # b ranks above a overall (a's second prompt is hard), but on the prompt both had, a is better.
    assert (pair.a, pair.b, pair.shared_prompts, pair.difference) == ("b", "a", 1, -10)
    assert pair.verdict.startswith("a draws better than b: +10.00 points (95% CI +8.00 to +12.00), P(a > b) = 1.00")
    assert leaderboard(samples("a", [1, 2], prompts=("x",)) + samples("b", [1, 2], prompts=("y",))).pairs[0].verdict.endswith("not compared.")


def test_error_rows_count_as_zero_or_are_excluded():
    data = samples("m", [80, 80, None, None])
    [zero] = leaderboard(data).models
    assert zero.mean == 40 and zero.errors == 2 and zero.n == 4 and zero.error_codes == {"parse_error": 2}
    [excluded] = leaderboard(data, errors="exclude").models
    assert excluded.mean == 80 and excluded.errors == 2 and excluded.n == 2
    assert excluded.components["clip"] == 0.8  # components are means over drawings that scored
    [none_left] = leaderboard(samples("m", [None, None]), errors="exclude").models
    assert none_left.mean is None and none_left.interval is None


def test_notes_on_small_samples_and_a_single_prompt():
    notes = leaderboard(samples("a", [1, 2, 3])).notes
    assert any("have 2 to 9 samples" in n for n in notes) and any("One prompt only" in n for n in notes)
    assert leaderboard(samples("a", STRONG, prompts=("p",)) + samples("a", STRONG, prompts=("q",))).notes == []


def test_models_from_folders_stems_results_files_or_a_manifest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_a = write_jsonl(tmp_path / "model-a.jsonl", [record("runs/alpha/1.svg", 50), record("runs/alpha/2.svg", 60)])
    run_b = write_jsonl(tmp_path / "model-b.jsonl", [record("runs/beta/gpt-x.svg", 70)])

    def models(by, **kw):
        return sorted({m for m, _ in collect_records([run_a, run_b], by=by, **kw)[0]})

    assert models("dir") == ["alpha", "beta"]
    assert models("stem") == ["1", "2", "gpt-x"]
    assert models("results") == ["model-a", "model-b"]
    (tmp_path / "runs").mkdir()
    manifest = tmp_path / "runs" / "manifest.jsonl"
    write_jsonl(manifest, [{"path": "alpha/1.svg", "model": "Alpha"}, {"path": "beta/gpt-x.svg", "model": "Beta", "sample": 1}])
    labelled, notes = collect_records([run_a, run_b], by="model", manifest=manifest)
    assert sorted(m for m, _ in labelled) == ["Alpha", "Beta"]
    assert notes == ["1 records have no 'model' (not in the manifest, or no file) and were left out"]
    assert default_grouping(manifest=True, results_files=1) == "model"
    assert default_grouping(manifest=False, results_files=2) == "results"
    assert default_grouping(manifest=False, results_files=1) == "dir"
    with pytest.raises(UsageError, match="needs --manifest"):
        collect_records([run_a], by="model")
    with pytest.raises(UsageError, match="no column 'vendor'"):
        collect_records([run_a], by="vendor", manifest=manifest)


def test_mixed_configs_are_refused_and_duplicates_count_once(tmp_path):
    one = write_jsonl(tmp_path / "a.jsonl", [record("x/1.svg", 50)])
    other = write_jsonl(tmp_path / "b.jsonl", [record("x/2.svg", 50, config="c1")])
    with pytest.raises(UsageError, match="2 different judges(.|\n)*b.jsonl \\(1 records\\) differs from a.jsonl \\(1 records\\) in: config_sha256: c0 → c1"):
        collect_records([one, other], by="dir")
    labelled, _ = collect_records([one, one], by="dir")
    assert len(labelled) == 1


def test_read_results_accepts_json_arrays_and_an_unfinished_last_line(tmp_path):
    array = tmp_path / "r.json"
    array.write_text(json.dumps([record("a.svg", 1), record("b.svg", 2)]))
    assert len(read_results(array)) == 2
    partial = tmp_path / "r.jsonl"
    partial.write_text(json.dumps(record("a.svg", 1)) + "\n" + json.dumps(record("b.svg", 2))[:40])
    assert len(read_results(partial)) == 1
    broken = tmp_path / "bad.jsonl"
    broken.write_text("{nope\n" + json.dumps(record("a.svg", 1)) + "\n")
    with pytest.raises(UsageError, match="line 1"):
        read_results(broken)


def test_cli_table_and_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    strong = write_jsonl(tmp_path / "strong.jsonl", [record(f"s/{i}.svg", v) for i, v in enumerate(STRONG)])
    weak = write_jsonl(tmp_path / "weak.jsonl", [record(f"w/{i}.svg", v) for i, v in enumerate(WEAK)] + [record("w/bad.svg", None, error="parse_error")])
    runner = CliRunner()
    table = runner.invoke(main, ["compare", str(strong), str(weak)])
    assert table.exit_code == 0, table.output
    assert "Leaderboard" in table.output and "strong draws better than weak" in table.output
    assert "Scored by: svgscore 0.2.0 (source aaaaaaaaaaaa), config structural (c0), renderer cairosvg 2.9.1 on cairo 1.16.0" in table.output
    assert "Error rows count as score 0" in table.output
    out = tmp_path / "board.json"
    result = runner.invoke(main, ["compare", str(strong), str(weak), "-o", str(out), "--errors", "exclude", "--resamples", "500"])
    assert result.exit_code == 0, result.output
    board = json.loads(out.read_text())
    assert [m["model"] for m in board["models"]] == ["strong", "weak"]
    assert board["models"][1]["errors"] == 1 and board["models"][1]["n"] == 12
    assert board["pairs"][0]["separable"] is True and board["resamples"] == 500
    page = tmp_path / "board.html"
    assert runner.invoke(main, ["compare", str(strong), str(weak), "-o", str(page)]).exit_code == 0  # format from the suffix
    assert page.read_text().startswith("<!doctype html>") and "read_error: cannot read file" in page.read_text()  # files gone: said so
    bad = runner.invoke(main, ["compare", str(strong), "--by", "model"])
    assert bad.exit_code == 2 and "needs --manifest" in bad.output
