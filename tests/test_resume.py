"""Nothing lost: streamed output, kill -9 then --resume, Ctrl-C."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from .conftest import LADDER, REPO

CONFIG = str(REPO / "scorer" / "configs" / "structural.yaml")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """120 files: the ladder, copied round-robin under distinct names (the same bytes, so the same scores)."""
    folder = tmp_path_factory.mktemp("corpus")
    for i in range(120):
        path = LADDER[i % len(LADDER)]
        shutil.copy(path, folder / f"{i:03d}_{path.name}")
    return folder


def command(*args):
    # No result cache: a cached run would finish before it could be interrupted.
    return [sys.executable, "-m", "scorer", "score", *map(str, args), "--config", CONFIG, "--jobs", "2", "--no-cache"]


def start(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(command(*args), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint)


def default_sigint() -> None:
    """Ctrl-C as a terminal delivers it, even when this suite runs in a background job (which
    starts with SIGINT ignored, and Python then keeps it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_lines(path, n, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().count("\n") >= n:
            return
        assert proc.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {n} lines")


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "full.jsonl"
    proc = subprocess.run(command(corpus, "-o", out), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out.read_text()


def test_kill_9_then_resume_equals_an_uninterrupted_run(corpus, uninterrupted, tmp_path):
    out = tmp_path / "run.jsonl"
    proc = start(corpus, "-o", out)
    wait_for_lines(out, 10, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    kept = out.read_text().count("\n")
    assert 10 <= kept < 120
    with open(out, "a") as stream:  # what a kill in the middle of a write leaves behind
        stream.write('{"path": "half-writ')

    resumed = subprocess.run(command(corpus, "-o", out, "--resume"), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resume: {kept} records kept, {kept} of them made by this judge" in resumed.stderr
    assert out.read_text() == uninterrupted
    assert all(json.loads(line) for line in out.read_text().splitlines())


def test_resume_rescores_files_that_changed(corpus, uninterrupted, tmp_path):
    out = tmp_path / "run.jsonl"
    changed = tmp_path / "files"
    shutil.copytree(corpus, changed)
    records = [json.loads(line) for line in uninterrupted.splitlines()]
    # A finished run over the copy (the same records, re-pointed), then one file's bytes change.
    out.write_text("".join(json.dumps({**r, "path": r["path"].replace(str(corpus), str(changed))}) + "\n" for r in records))
    victim = sorted(changed.iterdir())[5]
    victim.write_text(victim.read_text().replace("</svg>", "<circle r='3'/></svg>"))
    resumed = subprocess.run(command(changed, "-o", out, "--resume"), cwd=REPO, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    lines = out.read_text().splitlines()
    assert len(lines) == 121  # one new record, for the one changed file
    assert json.loads(lines[-1])["path"] == str(victim)


def test_ctrl_c_keeps_complete_records_and_exits_130(corpus, tmp_path):
    out = tmp_path / "run.jsonl"
    proc = start(corpus, "-o", out)
    wait_for_lines(out, 5, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "interrupted" in stderr
    text = out.read_text()
    assert text.endswith("\n")
    assert all(json.loads(line)["path"] for line in text.splitlines())


def test_ctrl_c_with_json_output_leaves_a_valid_document(corpus, tmp_path):
    out = tmp_path / "run.json"
    proc = start(corpus, "-o", out)
    # Interrupt once scoring is under way (the first result names the judge on stderr), not after
    # a guessed delay: a busy machine may still be importing, before Ctrl-C is handled.
    for line in proc.stderr:
        if line.startswith("svgscore "):
            break
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode in (0, 130)
    assert isinstance(json.loads(out.read_text()), list)


def test_resume_needs_a_jsonl_output(corpus):
    proc = subprocess.run(command(corpus, "--resume"), cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--resume" in proc.stderr
