"""Fault injection: the CLI under killed workers, signals, a full disk, a read-only folder, a locked or
corrupt cache and models that will not load. Each case: a clear message, the documented exit code
(README, "Exit codes"), no record already written lost, and the run completed (by itself, or by
``--resume``) to exactly the records of an uninterrupted run.

Synchronised on observable events (lines in the output file, a lock holder saying it holds the
lock, claim files), never on sleeps.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scorer.cache import ResultCache

from .conftest import BROKEN, LADDER, REPO
from .test_resume import default_sigint, wait_for_lines

CONFIG = str(REPO / "scorer" / "configs" / "structural.yaml")
FILES = 24
SEED = 16


def make_corpus(folder: Path, files: int) -> Path:
    """``files`` files: the ladder round-robin under distinct names, and the broken fixtures (error rows)."""
    sources = LADDER + BROKEN
    for i in range(files):
        path = sources[i % len(sources)]
        shutil.copy(path, folder / f"{i:03d}_{path.name}")
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("fault-corpus"), FILES)


def command(*args, cache=False):
    flags = [] if cache else ["--no-cache"]
    return [sys.executable, "-m", "scorer", "score", *map(str, args), "--config", CONFIG, "--jobs", "2", *flags]


def environment(**extra):
    return {**os.environ, "HF_HUB_OFFLINE": "1", **extra}


def run(*args, cache=False, env=None, **kwargs):
    return subprocess.run(command(*args, cache=cache), cwd=REPO, env=env or environment(), capture_output=True, text=True, timeout=600, **kwargs)


def start(*args, env=None):
    return subprocess.Popen(
        command(*args), cwd=REPO, env=env or environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_sigint
    )



def score_uninterrupted(corpus: Path, out: Path, files: int) -> str:
    proc = run(corpus, "-o", out)
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert text.count("\n") == files
    return text


@pytest.fixture(scope="module")
def uninterrupted(corpus, tmp_path_factory):
    return score_uninterrupted(corpus, tmp_path_factory.mktemp("fault-full") / "full.jsonl", FILES)


def records(text: str) -> list[dict]:
    """The records of a JSONL text, in order. svgscore's source hash is left out: in a shared checkout
    other work may edit the package between two runs of one test, and no fault here touches it."""
    parsed = [json.loads(line) for line in text.splitlines()]
    for record in parsed:
        record["provenance"].pop("source_sha256")
    return parsed


def children(pid: int) -> list[int]:
    """Live process ids whose parent is ``pid`` (Linux /proc); zombies, killed but not yet reaped, left out."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except OSError:
            continue  # ended meanwhile
        if int(parent) == pid and state != "Z":
            found.append(int(stat.parent.name))
    return sorted(found)


def resume_to_the_end(corpus, out, uninterrupted, **kwargs):
    kept = out.read_text().count("\n") if out.exists() else 0
    resumed = run(corpus, "-o", out, "--resume", **kwargs)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resume: {kept} records kept" in resumed.stderr
    assert records(out.read_text()) == records(uninterrupted)


def complete_prefix(out, uninterrupted) -> str:
    """The complete lines written before a failure: a prefix of the uninterrupted run's."""
    text = out.read_text() if out.exists() else ""
    complete = text[: text.rfind("\n") + 1]
    assert records(complete) == records(uninterrupted)[: complete.count("\n")]
    return complete


# -- workers and signals ------------------------------------------------------------------


# How far the pool can be ahead of the output: the prefetch queue and the results waiting for a
# slow one (4 × jobs each), the tasks in the workers (jobs), one in hand: a file a worker holds is
# at most this many lines past the output.
AHEAD = 4 * 2 + 4 * 2 + 2 + 1
KILL_FILES = 4 * AHEAD + 8


def test_kill_9_workers_at_random_points_loses_nothing(tmp_path):
    """A worker killed from outside is replaced and its file tried again: the run ends as if nothing happened.

    A file is tried twice (a second death is a deterministic render error), so a kill must not land
    on the retry of the last victim's file: each kill waits until the output is past every file the
    last victim could have held, and the corpus is long enough that the last kill still meets a
    running pool with files to come.
    """
    (corpus := tmp_path / "corpus").mkdir()
    make_corpus(corpus, KILL_FILES)
    full = score_uninterrupted(corpus, tmp_path / "full.jsonl", KILL_FILES)
    rng = random.Random(SEED)
    out = tmp_path / "run.jsonl"
    proc = start(corpus, "-o", out)
    killed = []
    mark = rng.randrange(2, 6)
    for _ in range(3):
        wait_for_lines(out, mark, proc)
        workers = [pid for pid in children(proc.pid) if pid not in killed]
        assert workers, "no worker processes to kill"
        victim = rng.choice(workers)
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)
        mark += AHEAD + 1 + rng.randrange(3)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert len(set(killed)) == 3
    assert records(out.read_text()) == records(full)


@pytest.mark.parametrize(("signum", "code", "said"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "stopped by SIGTERM")])
def test_a_signal_to_the_parent_keeps_records_and_resume_completes(corpus, uninterrupted, tmp_path, signum, code, said):
    out = tmp_path / "run.jsonl"
    proc = start(corpus, "-o", out)
    wait_for_lines(out, 5, proc)
    workers = children(proc.pid)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    assert f"{said}: records scored so far were written" in stderr
    assert len(complete_prefix(out, uninterrupted).splitlines()) >= 5
    for pid in workers:  # stopped with the parent, not left running
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    resume_to_the_end(corpus, out, uninterrupted)


# -- the output's disk --------------------------------------------------------------------


def test_a_full_disk_is_exit_3_and_resume_completes(corpus, uninterrupted, tmp_path):
    """A file-size limit (``ulimit -f``) stands in for a disk that fills: writes fail with EFBIG."""
    out = tmp_path / "run.jsonl"
    limit = len("".join(uninterrupted.splitlines(keepends=True)[:3])) + 100  # room for 3 records and a bit

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = run(corpus, "-o", out, preexec_fn=limited)
    assert proc.returncode == 3, proc.stderr
    assert f"cannot write results to {out}: File too large; records written before it are kept" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert out.stat().st_size == limit  # filled to the limit, ending in a cut-off record
    assert len(complete_prefix(out, uninterrupted).splitlines()) == 3
    resume_to_the_end(corpus, out, uninterrupted)


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder nothing can be created in: chmod for a normal user; root ignores modes, so a read-only tmpfs."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "svgscore-test", str(folder)], capture_output=True).returncode:
        pytest.skip("running as root without permission to mount a read-only tmpfs")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_read_only_output_folder_is_exit_3_before_any_work(corpus, uninterrupted, read_only_dir, tmp_path):
    out = read_only_dir / "run.jsonl"
    proc = run(corpus, "-o", out)
    assert proc.returncode == 3, proc.stderr
    assert f"cannot write results to {out}:" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists()
    writable = tmp_path / "run.jsonl"
    resume_to_the_end(corpus, writable, uninterrupted)


# -- the cache ----------------------------------------------------------------------------


def test_a_cache_locked_by_another_process_is_bypassed(corpus, uninterrupted, tmp_path):
    cache = tmp_path / "cache"
    ResultCache(cache).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sqlite3, sys\n"
            f"db = sqlite3.connect({str(cache / 'results.sqlite3')!r}, isolation_level=None)\n"
            "db.execute('PRAGMA locking_mode=EXCLUSIVE'); db.execute('BEGIN EXCLUSIVE')\n"
            "db.execute(\"INSERT INTO results VALUES ('held', '{}')\")\n"
            "print('locked', flush=True); sys.stdin.readline()\n"
        )],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        out = tmp_path / "run.jsonl"
        proc = run(corpus, "-o", out, cache=True, env=environment(SVGSCORE_CACHE_DIR=str(cache)))
    finally:
        holder.communicate("\n", timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "database is locked); continuing without it" in proc.stderr
    assert records(out.read_text()) == records(uninterrupted)


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database\n" * 200)


def _truncated(path: Path) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.executemany("INSERT INTO results VALUES (?, ?)", ((f"k{i}", "x" * 500) for i in range(2000)))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    with open(path, "r+b") as stream:
        stream.truncate(path.stat().st_size // 2)


@pytest.mark.parametrize("damage", [_garbage, _truncated], ids=["corrupt", "truncated"])
def test_a_damaged_cache_is_set_aside_and_rebuilt(corpus, uninterrupted, tmp_path, damage):
    cache = tmp_path / "cache"
    ResultCache(cache).close()
    damage(cache / "results.sqlite3")
    out = tmp_path / "run.jsonl"
    env = environment(SVGSCORE_CACHE_DIR=str(cache))
    proc = run(corpus, "-o", out, cache=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "was unreadable" in proc.stderr and "moved to results.sqlite3.corrupt, starting a new one" in proc.stderr
    assert records(out.read_text()) == records(uninterrupted)
    assert (cache / "results.sqlite3.corrupt").exists()
    # The new cache works: it holds every (deterministic) record, and a re-run reads them back.
    rows = sqlite3.connect(cache / "results.sqlite3").execute("SELECT COUNT(*) FROM results").fetchone()[0]
    assert rows == len({json.loads(line)["sha256"] for line in uninterrupted.splitlines()})
    again = tmp_path / "again.jsonl"
    proc = run(corpus, "-o", again, cache=True, env=env)
    assert proc.returncode == 0 and "result cache" not in proc.stderr, proc.stderr
    assert records(again.read_text()) == records(uninterrupted)


# -- models that will not load ------------------------------------------------------------


def _ocr_fault(tmp_path: Path, turns: int) -> tuple[dict[str, str], Path]:
    claims = tmp_path / "claims"
    claims.mkdir()
    pythonpath = os.pathsep.join(filter(None, [str(REPO / "tests" / "fault_injection"), os.environ.get("PYTHONPATH")]))
    return environment(PYTHONPATH=pythonpath, SVGSCORE_FAULT_OCR=f"{claims}:{turns}"), claims


def test_ocr_failing_to_load_in_one_worker_replaces_that_worker(corpus, uninterrupted, tmp_path):
    env, claims = _ocr_fault(tmp_path, turns=1)
    out = tmp_path / "run.jsonl"
    proc = run(corpus, "-o", out, env=env)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in claims.iterdir()] == ["ocr-claim-0"]  # the fault fired, once
    assert records(out.read_text()) == records(uninterrupted)  # no file was judged without OCR


def test_ocr_failing_to_load_everywhere_is_exit_2_with_the_reason(corpus, uninterrupted, tmp_path):
    env, claims = _ocr_fault(tmp_path, turns=100)
    out = tmp_path / "run.jsonl"
    proc = run(corpus, "-o", out, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "worker processes cannot start: RuntimeError: injected fault: the OCR model failed to load" in proc.stderr
    assert complete_prefix(out, uninterrupted) == ""
    resume_to_the_end(corpus, out, uninterrupted)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    from .tiny_clip import build_tiny_clip

    return build_tiny_clip(tmp_path_factory.mktemp("tiny-clip"))


def test_clip_failing_to_load_is_exit_2_when_required_and_resume_completes(tiny_clip, tmp_path):
    import yaml

    files = tmp_path / "files"
    files.mkdir()
    for path in LADDER[:6]:
        shutil.copy(path, files)
    config = yaml.safe_load(Path(CONFIG).read_text())
    config["checks"]["clip"] = {"weight": 0.5, "required": True, "params": tiny_clip.clip_section(batch_size=2)}
    config_file = tmp_path / "clip.yaml"
    config_file.write_text(yaml.safe_dump(config))
    broken = tmp_path / "broken.pt"
    broken.write_bytes(tiny_clip.checkpoint.read_bytes()[: tiny_clip.checkpoint.stat().st_size // 2])

    def clip_run(out, weights, *extra):
        args = [sys.executable, "-m", "scorer", "score", files, "-o", out, "--config", config_file, "--jobs", "2", "--no-cache", "--clip-weights", weights, *extra]
        return subprocess.run(list(map(str, args)), cwd=REPO, env=environment(), capture_output=True, text=True, timeout=600)

    full = tmp_path / "full.jsonl"
    assert clip_run(full, tiny_clip.checkpoint).returncode == 0
    out = tmp_path / "run.jsonl"
    failed = clip_run(out, broken)
    assert failed.returncode == 2, failed.stderr
    assert "measure 'clip' is required by the config but unavailable: cannot load" in failed.stderr
    assert out.read_text() == ""
    resumed = clip_run(out, tiny_clip.checkpoint, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert records(out.read_text()) == records(full.read_text())
    assert all(json.loads(line)["components"]["clip"]["value"] is not None for line in out.read_text().splitlines())


def test_sigterm_is_not_a_hang_when_the_parent_waits_on_workers(corpus, tmp_path):
    """SIGTERM reaches a parent blocked waiting for results (not only between records)."""
    slow = tmp_path / "slow"
    slow.mkdir()
    shutil.copy(REPO / "fixtures" / "hostile" / "res_huge_arc.svg", slow)  # spins until its time limit
    out = tmp_path / "run.jsonl"
    proc = start(slow, "-o", out)
    deadline = time.monotonic() + 120
    while not children(proc.pid):  # workers started: the parent now waits on them
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
