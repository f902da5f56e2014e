"""Outside measures: a local module through ``plugins:`` and an installed package through the
``svgscore.measures`` entry point, loaded the same way in the parent and in every worker.

The example package (``examples/svgscore-symmetry``) is installed with pip — a real build,
with its dist-info and entry point — into a folder of its own put on ``PYTHONPATH``, rather
than into the shared venv, so no other test sees its measure.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scorer import PluginError, Scorer, UsageError

from .conftest import REPO

SVGSCORE = Path(sys.executable).with_name("svgscore")
PELICAN = REPO / "fixtures" / "ladder" / "05_crude_pelican_on_bicycle.svg"
BLANK = REPO / "fixtures" / "ladder" / "01_blank.svg"

LOCAL_PLUGIN = '''
from pydantic import Field
from scorer import Measurement, MeasureParams, check


class InkParams(MeasureParams):
    full_at: float = Field(0.5, gt=0, le=1)


@check("ink", "share of the canvas that is drawn on, full marks at full_at", params=InkParams)
def ink(drawing, params):
    share = float(drawing.content_mask.mean())
    return Measurement(min(1.0, share / params.full_at), f"{share:.1%} inked{MARK}", {"share": share})
'''


def write_plugin(folder: Path, mark: str = "") -> Path:
    path = folder / "ink_measure.py"
    path.write_text(LOCAL_PLUGIN.replace("{MARK}", mark), encoding="utf-8")
    return path


def write_config(folder: Path, plugin: str, measure: str = "ink") -> Path:
    config = folder / "with_plugin.yaml"
    config.write_text(f"plugins: [{plugin}]\nchecks:\n  {measure}: {{weight: 1.0}}\n  not_blank: {{weight: 0.5, gate: 0.25}}\n")
    return config


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SVGSCORE), *args], cwd=REPO, capture_output=True, text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    )


# -- a local module named in the config ------------------------------------------------------------


def test_local_plugin_file_scores_through_the_cli_and_says_where_it_comes_from(tmp_path):
    write_plugin(tmp_path)
    config = write_config(tmp_path, "ink_measure.py")  # relative to the config file
    proc = run("score", str(PELICAN), str(BLANK), "--config", str(config), "--format", "json", "--no-cache", "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    records = json.loads(proc.stdout)
    assert [r["status"] for r in records] == ["ok", "ok"]
    ink = records[0]["components"]["ink"]
    assert 0 < ink["value"] < 1 and "inked" in ink["explanation"]
    assert records[1]["components"]["ink"]["value"] == 0.0  # blank: nothing inked
    origin = records[0]["provenance"]["measures"]["ink"]
    assert origin["source"].startswith("plugin module") and len(origin["source_sha256"]) == 64

    listed = run("checks", "--config", str(config))
    assert listed.returncode == 0, listed.stderr
    line = next(line for line in listed.stdout.splitlines() if line.startswith("ink "))
    assert "plugin module" in line and "ink_measure.py" in line
    assert "params.full_at = 0.5" in listed.stdout


def test_plugin_module_by_name_through_the_library(tmp_path, monkeypatch):
    write_plugin(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # importable by name here, and so in the workers too
    with Scorer({"checks": {"ink": {"weight": 1.0}}}, plugins=["ink_measure"], jobs=2) as scorer:
        results = [scorer.score_file(PELICAN), scorer.score_file(BLANK)]
    assert [r.components["ink"].value > 0 for r in results] == [True, False]


def test_editing_a_plugin_changes_the_config_hash_and_rescores(tmp_path):
    write_plugin(tmp_path)
    config = write_config(tmp_path, "ink_measure.py")
    cache = tmp_path / "cache"
    with Scorer(config, cache=cache, jobs=1) as scorer:
        before, first = scorer.config_sha256, scorer.score_file(PELICAN)
    with Scorer(config, cache=cache, jobs=1) as scorer:
        assert scorer.config_sha256 == before
        assert scorer.score_file(PELICAN) == first  # unchanged plugin: the cached record
    write_plugin(tmp_path, mark=" (edited)")
    # A fresh interpreter, as a user's next run would be (this one has the old module loaded).
    code = (
        "import json, sys\nfrom scorer import Scorer\n"
        f"with Scorer({str(config)!r}, cache={str(cache)!r}, jobs=1) as s:\n"
        f"    r = s.score_file({str(PELICAN)!r})\n"
        "print(json.dumps([s.config_sha256, r.components['ink'].explanation]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    sha, explanation = json.loads(proc.stdout)
    assert sha != before
    assert explanation.endswith("(edited)")  # re-scored by the edited code, not served from the cache


def test_a_plugin_that_does_not_import_is_a_usage_error_naming_it(tmp_path):
    (tmp_path / "broken_measure.py").write_text("raise RuntimeError('this plugin is broken')\n")
    config = write_config(tmp_path, "broken_measure.py")
    proc = run("score", str(PELICAN), "--config", str(config), "--no-cache")
    assert proc.returncode == 2
    assert "broken_measure.py" in proc.stderr and "this plugin is broken" in proc.stderr
    assert proc.stdout == ""
    with pytest.raises(PluginError, match="no_such_module_anywhere"):
        Scorer({"checks": {"not_blank": {"weight": 1}}}, plugins=["no_such_module_anywhere"])


def test_a_plugin_only_workers_cannot_import_fails_the_run_up_front(tmp_path):
    """The parent imports it; a worker (a fresh interpreter) cannot: one clear error, at once,
    naming the module — not three worker deaths and a guess about memory."""
    plugin = write_plugin(tmp_path)
    plugin.write_text("import sys\nif sys.argv[:1] == ['-c']:\n    raise ImportError('missing in the worker')\n" + plugin.read_text())
    config = write_config(tmp_path, "ink_measure.py")
    with Scorer(config, jobs=2) as scorer:
        with pytest.raises(UsageError, match=r"worker processes cannot start: .*ink_measure\.py.*missing in the worker"):
            scorer.score_file(PELICAN)
        assert scorer.pool.stats.deaths == 0


def test_unknown_measure_names_the_plugin_mechanism():
    with pytest.raises(UsageError, match="unknown measure 'ink'.*plugins:"):
        Scorer({"checks": {"ink": {"weight": 1.0}}})


# -- an installed package through its entry point -------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """``pip install examples/svgscore-symmetry`` into its own folder (no network, no build isolation)."""
    target = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target", str(target), str(REPO / "examples" / "svgscore-symmetry")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (target / "svgscore_symmetry-0.1.0.dist-info" / "entry_points.txt").is_file()
    return target


def test_installed_plugin_is_listed_and_scores_through_the_cli(installed, tmp_path):
    env = {"PYTHONPATH": str(installed)}
    listed = run("checks", env=env)
    assert "mirror_symmetry" in listed.stdout and "entry point symmetry of svgscore-symmetry 0.1.0" in listed.stdout
    config = tmp_path / "symmetry.yaml"
    config.write_text("checks:\n  mirror_symmetry: {weight: 1.0}\n  not_blank: {weight: 0.5, gate: 0.25}\n")  # no plugins: line
    out = tmp_path / "scores.csv"
    proc = run("score", "fixtures/ladder", "--config", str(config), "-o", str(out), "--no-cache", env=env)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.open()))
    values = [float(r["mirror_symmetry.value"]) for r in rows if r["status"] == "ok" and r["mirror_symmetry.value"]]
    assert len(values) >= 8 and all(0 <= v <= 1 for v in values) and len(set(values)) > 3


def test_installed_plugin_through_the_library_and_validate(installed, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(installed), "HF_HUB_OFFLINE": "1"}
    code = (
        "from scorer import Scorer\n"
        "with Scorer({'checks': {'mirror_symmetry': {'weight': 1.0, 'params': {'tolerance': 0}}}}, jobs=1) as s:\n"
        f"    r = s.score_file({str(PELICAN)!r})\n"
        "print(r.components['mirror_symmetry'].value, r.provenance.measures['mirror_symmetry']['version'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stderr
    value, version = proc.stdout.split()
    assert 0 < float(value) < 1 and version == "0.1.0"

    votes = tmp_path / "votes.csv"
    rows = [("01_blank.svg", "05_crude_pelican_on_bicycle.svg", "b"), ("02_random_shapes.svg", "06_careful_pelican_on_bicycle.svg", "b")]
    votes.write_text("a,b,winner\n" + "".join(f"{REPO / 'fixtures/ladder' / a},{REPO / 'fixtures/ladder' / b},{w}\n" for a, b, w in rows))
    config = tmp_path / "symmetry.yaml"
    config.write_text("checks:\n  mirror_symmetry: {weight: 1.0}\n  not_blank: {weight: 0.5, gate: 0.25}\n")
    proc = run("validate", str(votes), "--config", str(config), "--format", "json", "--no-cache", env={"PYTHONPATH": str(installed)})
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    [figures] = report["labels"][0]["figures"]
    assert figures["used"] == 2
    assert figures["components"]["mirror_symmetry"]["alone"]["decided"] == 2
