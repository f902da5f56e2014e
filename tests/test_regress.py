"""The CI regression gate: per-file, per-model and mean drops; new and missing files; the CLI exit code."""

import shutil

import yaml
from click.testing import CliRunner

from scorer.cli import main
from scorer.compare.regress import check_regression
from scorer.record import ScoreResult

from .conftest import FIXTURES, REPO
from .records import record

STRUCTURAL_CONFIG = str(REPO / "scorer" / "configs" / "structural.yaml")


def rec(path, score, error=None, config="c0", **judge):
    return ScoreResult.from_dict(record(path, score, error=error, config=config, judge=judge))


BASELINE = [rec("out/a.svg", 80), rec("out/b.svg", 60), rec("out/c.svg", 40), rec("out/gone.svg", 50)]


def test_small_changes_pass():
    gate = check_regression(BASELINE, [rec("out/a.svg", 79), rec("./out/b.svg", 61), rec("out/c.svg", 38.5)], max_drop=2)
    assert not gate.failed and gate.compared == 3 and gate.files == [] and gate.models == []
    assert gate.missing == ["out/gone.svg"] and gate.new == []
    assert gate.lines()[0] == "regression gate (max drop 2 points): passed"


def test_a_file_dropping_beyond_the_threshold_fails_and_is_named():
    gate = check_regression(BASELINE, [rec("out/a.svg", 80), rec("out/b.svg", 57.5), rec("out/c.svg", None, "parse_error")], max_drop=2)
    assert gate.failed
    assert [(c.name, c.delta, c.note) for c in gate.files] == [("out/c.svg", -40, "now parse_error"), ("out/b.svg", -2.5, "")]
    text = "\n".join(gate.lines())
    assert "FAILED" in text and "2 of 3 files dropped by more than 2 points" in text
    assert "out/c.svg: 40.0 → 0.0 (-40.0)  [now parse_error]" in text


def test_the_mean_fails_the_gate_when_files_have_a_looser_limit():
    current = [rec(r.path, r.score - 3) for r in BASELINE]
    assert check_regression(BASELINE, current, max_drop=2).failed
    gate = check_regression(BASELINE, current, max_drop=2, max_file_drop=5)
    assert gate.failed and gate.files == [] and gate.mean.delta == -3
    assert gate.lines()[:2] == [
        "regression gate (max drop 2 points, 5 per file): FAILED",
        "  mean over 4 files: 57.5 → 54.5 (-3.0)  dropped beyond the threshold",
    ]
    assert not check_regression(BASELINE, current, max_drop=3, max_file_drop=5).failed


def test_per_model_means(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    models = {str(tmp_path / "out" / n): m for n, m in (("a.svg", "x"), ("b.svg", "x"), ("c.svg", "y"))}
    # Each of x's files drops 1.9 (within 2): x's mean drops 1.9, y improves; the gate passes.
    current = [rec("out/a.svg", 78.1), rec("out/b.svg", 58.1), rec("out/c.svg", 45)]
    assert not check_regression(BASELINE, current, max_drop=2, models=models).failed
    gate = check_regression(BASELINE, current, max_drop=1.8, models=models)
    assert [c.name for c in gate.models] == ["x (mean over 2 files)"]


def test_new_files_are_reported_not_failed_and_no_overlap_fails():
    gate = check_regression(BASELINE, [*BASELINE, rec("out/new.svg", 1)], max_drop=2)
    assert not gate.failed and gate.new == ["out/new.svg"]
    assert "  1 file new (not in the baseline), not gated: out/new.svg" in gate.lines()
    nothing = check_regression(BASELINE, [rec("/abs/out/a.svg", 80)], max_drop=2)
    assert nothing.failed and "nothing was compared" in "\n".join(nothing.lines())


def test_score_baseline_exit_codes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runs = tmp_path / "runs"
    runs.mkdir()
    for name in ("03_bicycle_only.svg", "05_crude_pelican_on_bicycle.svg", "06_careful_pelican_on_bicycle.svg"):
        shutil.copy(FIXTURES / "ladder" / name, runs / name)
    (tmp_path / "manifest.csv").write_text(
        "path,prompt,model\n"
        + "".join(f"runs/{p.name},a pelican riding a bicycle,{'m1' if p.name.startswith('0') else 'm2'}\n" for p in runs.iterdir())
    )
    runner = CliRunner()
    args = ["score", "runs", "--config", STRUCTURAL_CONFIG, "--no-cache", "-j", "1", "--manifest", "manifest.csv"]
    first = runner.invoke(main, [*args, "-o", "old.jsonl"])
    assert first.exit_code == 0, first.output
    same = runner.invoke(main, [*args, "-o", "new.jsonl", "--baseline", "old.jsonl", "--max-drop", "2.0"])
    assert same.exit_code == 0, same.output
    assert "regression gate (max drop 2 points): passed" in same.stderr
    # The generator "regressed": the careful drawing is now the crude one, and one file is gone.
    shutil.copy(FIXTURES / "ladder" / "05_crude_pelican_on_bicycle.svg", runs / "06_careful_pelican_on_bicycle.svg")
    (runs / "03_bicycle_only.svg").unlink()
    worse = runner.invoke(main, ["score", "runs", "--config", STRUCTURAL_CONFIG, "--no-cache", "-j", "1", "-o", "new.jsonl", "--baseline", "old.jsonl"])
    assert worse.exit_code == 1, worse.output
    assert "FAILED" in worse.stderr and "runs/06_careful_pelican_on_bicycle.svg:" in worse.stderr
    assert "1 file missing (in the baseline, not scored now), not gated: runs/03_bicycle_only.svg" in worse.stderr
    assert len((tmp_path / "new.jsonl").read_text().splitlines()) == 2  # results are written even when the gate fails
    bad = runner.invoke(main, [*args, "--baseline", "missing.jsonl"])
    assert bad.exit_code == 2


def test_example_workflow_uses_real_options():
    """The GitHub Actions example must not rot: every svgscore flag it uses exists."""
    workflow = yaml.safe_load((REPO / "docs" / "ci" / "svgscore-regression.yml").read_text())
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    commands = [line.strip() for step in steps for line in step.get("run", "").splitlines() if line.strip().startswith("svgscore ")]
    assert any("--baseline" in c for c in commands)
    for command in commands:
        words = command.split()
        sub = main.get_command(None, words[1])
        known = {opt for param in sub.params for opt in param.opts}
        used = {w.split("=")[0] for w in words[2:] if w.startswith("-")}
        assert used <= known, f"{command}: unknown {used - known}"
