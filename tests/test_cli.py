"""The svgscore command: formats, manifests, exit codes, determinism."""

import csv
import io
import json
import os
import subprocess
import sys

import pytest

from .conftest import FIXTURES, LADDER, REPO

STRUCTURAL_CONFIG = str(REPO / "scorer" / "configs" / "structural.yaml")
# Everything but fixtures/hostile/ (slow by design; tests/test_hostile.py covers it).
FOLDERS = ("fixtures/broken", "fixtures/decoy", "fixtures/ladder", "fixtures/other_prompt")


def run(*args, cwd=REPO, **kwargs):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "scorer", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, **kwargs
    )


@pytest.fixture(scope="module")
def fixture_records():
    proc = run("score", *FOLDERS, "--config", STRUCTURAL_CONFIG, "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def test_every_fixture_gets_exactly_one_record(fixture_records):
    on_disk = sorted(str(p.relative_to(REPO)) for f in FOLDERS for p in (REPO / f).rglob("*") if p.suffix in (".svg", ".svgz"))
    assert sorted(r["path"] for r in fixture_records) == on_disk


def test_record_schema(fixture_records):
    required = {"path", "sha256", "prompt", "status", "score", "error", "components", "render", "config_sha256", "provenance"}
    for r in fixture_records:
        assert required <= set(r)
        assert r["status"] in ("ok", "error")
        if r["status"] == "ok":
            assert 0 <= r["score"] <= 100 and r["error"] is None
            assert set(r["render"]) == {"width", "height", "sha256"}
            for c in r["components"].values():
                assert set(c) >= {"value", "weight", "explanation"}
        else:
            assert r["score"] is None and set(r["error"]) == {"code", "message"}
        assert "clip" not in r["provenance"]["measures"]  # CLIP not configured
        assert r["provenance"]["renderer"]["backend"] == "cairosvg" and r["provenance"]["config"] == STRUCTURAL_CONFIG


def test_broken_files_are_error_rows_and_the_run_still_exits_0(fixture_records):
    errors = {r["path"]: r["error"]["code"] for r in fixture_records if r["status"] == "error"}
    assert set(errors) == {f"fixtures/broken/{n}.svg" for n in ("empty", "not_svg", "not_xml", "truncated")}
    assert set(errors.values()) == {"parse_error"}


def test_sha256_is_of_the_file_bytes(fixture_records):
    import hashlib

    for r in fixture_records:
        assert r["sha256"] == hashlib.sha256((REPO / r["path"]).read_bytes()).hexdigest()


def test_output_is_deterministic():
    first = run("score", *FOLDERS, "--config", STRUCTURAL_CONFIG, "--format", "json", "--jobs", "2", "--no-cache")
    second = run("score", *FOLDERS, "--config", STRUCTURAL_CONFIG, "--format", "json", "--jobs", "1", "--no-cache")
    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout


def test_csv_flattens_components(tmp_path):
    out = tmp_path / "results.csv"
    proc = run("score", "fixtures/ladder", "--config", STRUCTURAL_CONFIG, "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == len(LADDER)
    assert {"path", "score", "error.code", "render.sha256", "bicycle_present.value", "bicycle_present.explanation"} <= set(rows[0])
    assert float(rows[-1]["bicycle_present.value"]) == 1.0


def test_table_is_the_default_on_stdout():
    proc = run("score", "fixtures/ladder/05_crude_pelican_on_bicycle.svg", "--config", STRUCTURAL_CONFIG)
    assert proc.returncode == 0
    assert "05_crude_pelican_on_bicycle.svg" in proc.stdout and "bicycle_present" in proc.stdout
    assert "renderer cairosvg" in proc.stderr and "renderer" not in proc.stdout  # logs on stderr only


@pytest.mark.parametrize("manifest_format", ["csv", "jsonl"])
def test_manifest_gives_each_file_its_prompt(tmp_path, manifest_format):
    turtle = FIXTURES / "other_prompt" / "turtle_roller_skates.svg"
    crude = FIXTURES / "ladder" / "05_crude_pelican_on_bicycle.svg"
    manifest = tmp_path / f"prompts.{manifest_format}"
    rows = [(os.path.relpath(turtle, tmp_path), "a turtle wearing roller skates"), (str(crude), "a pelican riding a bicycle")]
    if manifest_format == "csv":
        manifest.write_text("path,prompt\n" + "".join(f'{p},"{q}"\n' for p, q in rows))
    else:
        manifest.write_text("".join(json.dumps({"path": p, "prompt": q}) + "\n" for p, q in rows))
    proc = run("score", "--manifest", str(manifest), "--config", STRUCTURAL_CONFIG, "--format", "jsonl")
    assert proc.returncode == 0, proc.stderr
    records = {os.path.basename(r["path"]): r for r in map(json.loads, proc.stdout.splitlines())}
    assert records["turtle_roller_skates.svg"]["prompt"] == "a turtle wearing roller skates"
    assert records["turtle_roller_skates.svg"]["components"]["bicycle_present"]["value"] is None
    assert records["05_crude_pelican_on_bicycle.svg"]["components"]["bicycle_present"]["value"] == 1.0


def test_manifest_entry_for_a_missing_file_is_an_error_row(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,prompt\nnope.svg,a cat\n")
    proc = run("score", "--manifest", str(manifest), "--config", STRUCTURAL_CONFIG, "--format", "jsonl")
    assert proc.returncode == 0
    (record,) = map(json.loads, proc.stdout.splitlines())
    assert record["status"] == "error" and record["error"]["code"] == "read_error"


@pytest.mark.parametrize(
    "config_text, message",
    [
        ("checks:\n  no_such_check: {weight: 1}\n", "unknown measure 'no_such_check'"),
        ("clip:\n  weight: -1\n", "checks.clip.weight"),
        ("render:\n  sizee: 100\n", "sizee"),
        ("checks:\n  element_count: {params: {full_at: 0}}\n", "full_at"),
        ("clip:\n  calibration: {low: 0.5, high: 0.1}\n", "calibration"),
        ("- just\n- a list\n", "mapping"),
    ],
)
def test_config_errors_exit_2_with_a_clear_message(tmp_path, config_text, message):
    config = tmp_path / "bad.yaml"
    config.write_text(config_text)
    proc = run("score", "fixtures/ladder", "--config", str(config))
    assert proc.returncode == 2
    assert message in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize(
    "args",
    [("score", "no/such/dir"), ("score",), ("score", "fixtures", "--format", "xml"), ("score", "fixtures", "--bogus")],
)
def test_usage_errors_exit_2(args):
    assert run(*args).returncode == 2


def test_checks_lists_every_check_with_a_description():
    proc = run("checks")
    assert proc.returncode == 0
    for name in ("parses", "renders", "not_blank", "bicycle_present", "closed_paths", "element_count", "within_canvas", "clip"):
        assert any(line.startswith(name + " ") for line in proc.stdout.splitlines()), name


def test_version():
    from scorer import __version__

    proc = run("--version")
    assert proc.returncode == 0 and __version__ in proc.stdout


def test_output_to_a_device_or_fifo_is_written_in_place_not_renamed_over(tmp_path):
    fifo = tmp_path / "results.fifo"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    proc = run("score", "fixtures/ladder/05_crude_pelican_on_bicycle.svg", "--config", STRUCTURAL_CONFIG, "--format", "json", "-o", str(fifo), "--no-cache")
    out, _ = reader.communicate(timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert fifo.is_fifo()  # still the FIFO: not replaced by a renamed regular file
    assert not (tmp_path / "results.fifo.partial").exists()
    assert json.loads(out)[0]["status"] == "ok"
