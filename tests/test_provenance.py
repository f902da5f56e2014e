"""Provenance: what differs between two judges, and the gates that notice it (issue 17).

``--baseline`` refuses (exit 2) and ``compare`` refuses to mix records made by judges that differ
in anything that can move scores, naming each difference; ``--allow-judge-change`` proceeds and
says so. Version 1 records (before provenance) still load and go through compare, the HTML
report and the gate.
"""

import dataclasses
import json
import shutil

import pytest
from click.testing import CliRunner

from scorer.cli import main
from scorer.compare.html import build_html
from scorer.compare.leaderboard import collect_records, leaderboard, read_results, sample_of
from scorer.compare.regress import check_regression
from scorer.errors import UsageError
from scorer.record import Provenance, ScoreResult, provenance_differences

from .conftest import FIXTURES
from .records import PROVENANCE, record

# A record exactly as svgscore 0.1 wrote it (the README's schema before record version 2).
V1_RECORD = {
    "path": "runs/m1/05_crude.svg",
    "sha256": "5" * 64,
    "prompt": "a pelican riding a bicycle",
    "status": "ok",
    "score": 61.25,
    "summary": "weighted mean of 9 components",
    "error": None,
    "components": {
        "parses": {"value": 1.0, "weight": 0.1, "explanation": "strict XML", "details": {}},
        "clip": {"value": None, "weight": 0.5, "explanation": "CLIP unavailable: no weights; not counted", "details": {}},
    },
    "render": {"width": 224, "height": 168, "sha256": "6" * 64},
    "config_sha256": "c0",
    "clip": {"model": "ViT-B-32", "pretrained": None, "available": False, "reason": "no weights given", "device": None},
    "svgscore_version": "0.1.0",
    "record_version": 1,
}


def judge(**changes):
    return Provenance(**{**PROVENANCE, **changes})


def moved(before, after):
    return [str(d) for d in provenance_differences(before, after) if d.moves_scores]


def test_every_change_that_can_move_scores_is_named_and_nothing_else_is():
    base = judge(measures={**PROVENANCE["measures"], "vlm_judge": {"available": True, "rubric_version": 1}})
    clip = PROVENANCE["measures"]["clip"]
    assert provenance_differences(base, dataclasses.replace(base)) == []
    assert moved(judge(), base) == ["measures.vlm_judge.available: (not recorded) → True", "measures.vlm_judge.rubric_version: (not recorded) → 1"]
    cases = {
        "renderer.native: cairo 1.16.0 → cairo 1.18.0": {"renderer": {**PROVENANCE["renderer"], "native": "cairo 1.18.0"}},
        "renderer.version: 2.9.1 → 2.9.2": {"renderer": {**PROVENANCE["renderer"], "version": "2.9.2"}},
        "config_sha256: c0 → c1": {"config_sha256": "c1"},
        f"source_sha256: {'a' * 12}… → {'e' * 12}…": {"source_sha256": "e" * 64},
        f"measures.clip.checkpoint_sha256: {'b' * 12}… → {'f' * 12}…": {"measures": {**base.measures, "clip": {**clip, "checkpoint_sha256": "f" * 64}}},
        "measures.clip.precision: fp32 → fp16": {"measures": {**base.measures, "clip": {**clip, "precision": "fp16"}}},
        # A judge or plugin reports its own settings: each one counts, including new ones.
        "measures.vlm_judge.rubric_version: 1 → 2": {"measures": {**base.measures, "vlm_judge": {"available": True, "rubric_version": 2}}},
        "measures.outlined_text.ocr: rapidocr-onnxruntime 1.4.4 → none": {"measures": {**base.measures, "outlined_text": {**base.measures["outlined_text"], "ocr": None}}},
    }  # fmt: skip
    for expected, change in cases.items():
        assert moved(base, dataclasses.replace(base, **change)) == [expected], expected
    # Where it ran only explains a drift: listed, not gated.
    elsewhere = dataclasses.replace(base, python="3.12.1", platform="Darwin arm64", measures={**base.measures, "clip": {**clip, "device": "cuda"}})
    assert moved(base, elsewhere) == []
    assert [str(d) for d in provenance_differences(base, elsewhere)] == [
        "python: 3.11.7 → 3.12.1", "platform: Linux x86_64 → Darwin arm64", "measures.clip.device: cpu → cuda",
    ]  # fmt: skip
    # Not counted either way: the reason does not matter. Counted or not: it does.
    off = {"available": False, "reason": "no weights"}
    assert moved(judge(measures={"clip": off}), judge(measures={"clip": {**off, "reason": "file not found"}})) == []
    assert "measures.clip.available: False → True" in moved(judge(measures={"clip": off}), base)


def test_a_v1_record_loads_and_goes_through_compare_report_and_the_gate(tmp_path):
    loaded = ScoreResult.from_dict(V1_RECORD)
    assert loaded.record_version == 1 and loaded.score == 61.25 and loaded.components["clip"].value is None
    assert loaded.provenance.measures == {"clip": {"available": False, "model": "ViT-B-32", "pretrained": None, "reason": "no weights given", "device": None}}
    assert loaded.provenance.config_sha256 == "c0" and loaded.provenance.svgscore == "0.1.0"
    other = {**V1_RECORD, "path": "runs/m2/06_careful.svg", "score": 80.0}
    results = tmp_path / "v1.jsonl"
    results.write_text("".join(json.dumps(r) + "\n" for r in (V1_RECORD, other)))
    assert [r.score for r in read_results(results)] == [61.25, 80.0]

    labelled, notes = collect_records([results], by="dir")
    assert sorted(m for m, _ in labelled) == ["m1", "m2"] and notes == []
    board = leaderboard([sample_of(m, r) for m, r in labelled], resamples=200, provenance=[loaded.provenance])
    assert [m.model for m in board.models] == ["m2", "m1"]
    assert json.loads(json.dumps(board.to_dict()))["provenance"][0]["svgscore"] == "0.1.0"
    page = build_html(labelled, board, {})
    assert "svgscore 0.1.0" in page and "renderer not recorded" in page and "61.2" in page

    # v1 against v1 (same judge as far as recorded): gated as before.
    same = check_regression(read_results(results), [ScoreResult.from_dict({**V1_RECORD, "score": 60.0})], max_drop=2)
    assert not same.refused and not same.failed and same.compared == 1
    # v1 against today's v2: what the old record never said cannot be shown to be the same.
    today = ScoreResult.from_dict(record("runs/m1/05_crude.svg", 61.0))
    gate = check_regression(read_results(results), [today], max_drop=2)
    assert gate.refused
    text = "\n".join(gate.lines())
    assert "renderer.native: (not recorded) → cairo 1.16.0" in text and "svgscore: 0.1.0 → 0.2.0" in text


def test_the_gate_refuses_a_changed_judge_unless_allowed():
    before = [ScoreResult.from_dict(record("out/a.svg", 80)), ScoreResult.from_dict(record("out/b.svg", 60))]
    upgraded = {"renderer": {**PROVENANCE["renderer"], "native": "cairo 1.18.0"}, "platform": "Darwin arm64"}
    after = [ScoreResult.from_dict(record("out/a.svg", 78.5, judge=upgraded)), ScoreResult.from_dict(record("out/b.svg", 60, judge=upgraded))]
    gate = check_regression(before, after, max_drop=2)
    assert gate.refused
    assert gate.lines() == [
        "regression gate: REFUSED, the baseline was made by a different judge, so a change in score would not be the drawings' doing:",
        "    renderer.native: cairo 1.16.0 → cairo 1.18.0",
        "  also differs (does not move scores):",
        "    platform: Linux x86_64 → Darwin arm64",
        "  make a new baseline with this judge (this run's records were written), or pass --allow-judge-change to gate anyway",
    ]
    allowed = check_regression(before, after, max_drop=2, allow_judge_change=True)
    assert not allowed.refused and not allowed.failed
    assert allowed.lines()[:3] == [
        "regression gate (max drop 2 points): passed",
        "  the judge changed since the baseline (gated anyway: --allow-judge-change); differences may come from it:",
        "    renderer.native: cairo 1.16.0 → cairo 1.18.0",
    ]
    # Another machine, same judge: gated, the platform noted.
    elsewhere = [ScoreResult.from_dict(record("out/a.svg", 80, judge={"platform": "Darwin arm64"}))]
    gate = check_regression(before, elsewhere, max_drop=2)
    assert not gate.refused and "    platform: Linux x86_64 → Darwin arm64" in gate.lines()


def test_score_baseline_exits_2_on_a_changed_judge_and_proceeds_when_allowed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    for name in ("03_bicycle_only.svg", "05_crude_pelican_on_bicycle.svg"):
        shutil.copy(FIXTURES / "ladder" / name, tmp_path / "runs" / name)
    runner = CliRunner()
    args = ["score", "runs", "--config", "structural", "--no-cache", "-j", "1"]
    first = runner.invoke(main, [*args, "-o", "old.jsonl"])
    assert first.exit_code == 0, first.output
    records = [json.loads(line) for line in (tmp_path / "old.jsonl").read_text().splitlines()]
    native = records[0]["provenance"]["renderer"]["native"]
    # The baseline as another machine, with an older cairo, would have written it.
    for r in records:
        r["provenance"]["renderer"]["native"] = "cairo 1.14.0"
    (tmp_path / "old.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    refused = runner.invoke(main, [*args, "-o", "new.jsonl", "--baseline", "old.jsonl"])
    assert refused.exit_code == 2, refused.output
    assert "REFUSED" in refused.stderr and f"renderer.native: cairo 1.14.0 → {native}" in refused.stderr
    assert len((tmp_path / "new.jsonl").read_text().splitlines()) == 2  # the run's records are written all the same
    allowed = runner.invoke(main, [*args, "-o", "new.jsonl", "--baseline", "old.jsonl", "--allow-judge-change"])
    assert allowed.exit_code == 0, allowed.output
    assert "passed" in allowed.stderr and "gated anyway: --allow-judge-change" in allowed.stderr
    assert f"renderer.native: cairo 1.14.0 → {native}" in allowed.stderr


def test_resume_rescores_records_another_judge_made(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copytree(FIXTURES / "attacks", tmp_path / "runs")
    runner = CliRunner()
    args = ["score", "runs", "--config", "structural", "--no-cache", "-j", "1", "-o", "out.jsonl"]
    assert runner.invoke(main, args).exit_code == 0
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    stale = json.loads(lines[2])
    stale["provenance"]["measures"]["outlined_text"]["ocr_models_sha256"] = "0" * 64  # another OCR model
    (tmp_path / "out.jsonl").write_text("\n".join([*lines[:2], json.dumps(stale), *lines[3:]]) + "\n")
    resumed = runner.invoke(main, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert f"resume: {len(lines)} records kept, {len(lines) - 1} of them made by this judge" in resumed.stderr
    after = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(after) == len(lines) + 1 and json.loads(after[-1])["path"] == stale["path"]
    assert json.loads(after[-1]) == json.loads(lines[2])  # scored again, by today's judge


def test_compare_refuses_mixed_judges_and_says_so_when_allowed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cuda = {"measures": {**PROVENANCE["measures"], "clip": {**PROVENANCE["measures"]["clip"], "device": "cuda"}}}
    fp16 = {"measures": {**PROVENANCE["measures"], "clip": {**PROVENANCE["measures"]["clip"], "precision": "fp16"}}}
    a = tmp_path / "a.jsonl"
    a.write_text("".join(json.dumps(record(f"a/{i}.svg", 50 + i)) + "\n" for i in range(4)))
    b = tmp_path / "b.jsonl"
    b.write_text("".join(json.dumps(record(f"b/{i}.svg", 60 + i, judge=fp16)) + "\n" for i in range(4)))
    gpu = tmp_path / "gpu.jsonl"
    gpu.write_text("".join(json.dumps(record(f"g/{i}.svg", 55 + i, judge=cuda)) + "\n" for i in range(4)))
    runner = CliRunner()

    refused = runner.invoke(main, ["compare", str(a), str(b)])
    assert refused.exit_code == 2
    assert "b.jsonl (4 records) differs from a.jsonl (4 records) in: measures.clip.precision: fp32 → fp16" in refused.output
    assert "--allow-judge-change" in refused.output
    with pytest.raises(UsageError, match="2 different judges"):
        collect_records([a, b], by="results")

    out = tmp_path / "board.json"
    allowed = runner.invoke(main, ["compare", str(a), str(b), "--allow-judge-change", "-o", str(out), "--resamples", "200"])
    assert allowed.exit_code == 0, allowed.output
    board = json.loads(out.read_text())
    assert [p["measures"]["clip"]["precision"] for p in board["provenance"]] == ["fp32", "fp16"]
    assert any("compared anyway (--allow-judge-change)" in n and "fp32 → fp16" in n for n in board["notes"])

    # The same judge on a GPU: compared without a flag; both provenances are in the output.
    same = runner.invoke(main, ["compare", str(a), str(gpu), "-o", str(out), "--resamples", "200"])
    assert same.exit_code == 0, same.output
    board = json.loads(out.read_text())
    assert [p["measures"]["clip"]["device"] for p in board["provenance"]] == ["cpu", "cuda"]
    assert not any("judge" in n for n in board["notes"])


def test_html_header_shows_the_provenance_and_marks_what_differs():
    one = ScoreResult.from_dict(record("a/1.svg", 50, judge={"platform": "<b>Linux</b>"}))
    page = build_html([("a", one)], leaderboard([sample_of("a", one)], resamples=200, provenance=[one.provenance]), {})
    header = page.split("</header>")[0]
    for shown in ("judge: svgscore 0.2.0 (source aaaaaaaaaaaa), config structural (c0)", "cairo 1.16.0", "b" * 64, "fp32", "rapidocr-onnxruntime 1.4.4"):
        assert shown in header, shown
    assert "&lt;b&gt;Linux&lt;/b&gt;" in header and "<b>Linux" not in header
    two = dataclasses.replace(one, provenance=dataclasses.replace(one.provenance, renderer={**one.provenance.renderer, "native": "cairo 1.18.0"}))
    labelled = [("a", one), ("b", two)]
    board = leaderboard([sample_of(m, r) for m, r in labelled], resamples=200, provenance=[one.provenance, two.provenance])
    header = build_html(labelled, board, {}).split("</header>")[0]
    assert '<tr class="differs"><th>renderer.native</th><td>cairo 1.16.0</td><td>cairo 1.18.0</td></tr>' in header
    assert header.count('class="differs"') == 1 and "2 different provenances" in header


def test_what_is_not_a_record_is_refused_with_where(tmp_path):
    with pytest.raises(ValueError, match="no sha256, prompt"):
        ScoreResult.parse({"path": "x.svg", "score": 1})
    with pytest.raises(ValueError, match="JSON object"):
        ScoreResult.parse([1, 2])
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(json.dumps(record("a.svg", 1)) + "\n" + json.dumps({"path": "b.svg"}) + "\n")
    with pytest.raises(UsageError, match="wrong.jsonl line 2: not an svgscore record: no sha256"):
        read_results(wrong)
