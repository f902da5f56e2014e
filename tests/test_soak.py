"""A short soak (the invariants of `make soak`, scripts/soak.py, over 150 files): the CLI's open file
descriptors and worker processes stay constant, and no zombie is left. Sampled when given numbers of
records have appeared in the output, not on a clock."""

from __future__ import annotations

import random
import subprocess
import sys

from scripts.soak import FD_SLACK, children, drawing, open_fds

from .conftest import REPO
from .test_resume import wait_for_lines

FILES = 150


def test_fds_and_workers_stay_constant_and_no_zombies(tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    rng = random.Random(1)
    for i in range(FILES):
        (folder / f"{i:04d}.svg").write_text(drawing(random.Random(rng.random())))
    out = tmp_path / "run.jsonl"
    command = [sys.executable, "-m", "scorer", "score", str(folder), "-o", str(out), "--config", "structural", "--no-cache", "--jobs", "2"]
    proc = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    seen = []
    for mark in (30, 75, 120):
        wait_for_lines(out, mark, proc)
        kids = children(proc.pid)
        seen.append((open_fds(proc.pid), sorted(pid for pid, state in kids if state != "Z"), [pid for pid, state in kids if state == "Z"]))
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr
    assert out.read_text().count("\n") == FILES
    fds = [s[0] for s in seen]
    assert max(fds) - min(fds) <= FD_SLACK, seen  # a leak of one per file would be 90 here
    assert all(s[1] == seen[0][1] and len(s[1]) == 2 for s in seen), seen  # the same two workers throughout
    assert not any(s[2] for s in seen), seen
