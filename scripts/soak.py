"""A long run that must not leak, for `make soak`: 20,000 generated files through `svgscore score`.

    python scripts/soak.py [--files 20000] [--out build/soak] [--jobs 2]

The files vary in size (1 to 2,000 shapes, mostly under 160; paths, text, gradients, some gzip) with a sprinkling of
``fixtures/hostile/`` (every 250th file). One ``svgscore score`` process (CLI, structural config, no
cache) scores them all into a JSONL file while this script samples, every ``--every`` records, from
/proc: the RSS of the parent and of each worker, the parent's open file descriptors, its child
processes and zombies. After a warm-up (the first 10% of files) the limits are

  * RSS growth of the parent and of the largest worker < 50 MB,
  * open file descriptors and child processes constant (± the one file being read),
  * no zombie seen twice in a row (a worker being replaced is briefly one),
  * one record per file.

Prints the figures and exits 1 if a limit is broken. Linux only (/proc).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HOSTILE = sorted((REPO / "fixtures" / "hostile").glob("*.svg*"))
RSS_LIMIT_MB = 50.0
FD_SLACK = 2  # a file being read and a pipe being set up are not leaks


# -- /proc ----------------------------------------------------------------------------------


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, state) of every child of ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except OSError:
            continue
        if int(parent) == pid:
            found.append((int(stat.parent.name), state))
    return found


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


@dataclass
class Sample:
    records: int
    parent_rss: float
    worker_rss: list[float]
    fds: int
    children: int
    zombies: int


def sample(pid: int, records: int) -> Sample:
    kids = children(pid)
    live = [p for p, state in kids if state != "Z"]
    return Sample(
        records, rss_mb(pid) or 0.0, [r for p in live if (r := rss_mb(p)) is not None], open_fds(pid), len(live), len(kids) - len(live)
    )


# -- files ----------------------------------------------------------------------------------


def drawing(rng: random.Random) -> str:
    """An SVG of 1 to 160 shapes (1 in 100: 1,000 to 2,000): circles, rects, paths, polylines, text, a gradient."""
    shapes = rng.randint(1000, 2000) if rng.random() < 0.01 else int(10 ** rng.uniform(0, 2.2))
    parts = ['<defs><linearGradient id="g"><stop offset="0" stop-color="#c33"/><stop offset="1" stop-color="#33c"/></linearGradient></defs>']
    for _ in range(shapes):
        x, y, r = rng.uniform(0, 400), rng.uniform(0, 300), rng.uniform(1, 60)
        fill = rng.choice(("#222", "#e94", "url(#g)", "none", "#8ad"))
        kind = rng.random()
        if kind < 0.3:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{fill}" stroke="#000"/>')
        elif kind < 0.5:
            parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{r:.1f}" height="{r / 2:.1f}" fill="{fill}"/>')
        elif kind < 0.8:
            points = " ".join(f"{rng.uniform(0, 400):.1f} {rng.uniform(0, 300):.1f}" for _ in range(2 * rng.randint(1, 4)))
            parts.append(f'<path d="M{x:.1f} {y:.1f} Q{points} Z" fill="{fill}" stroke="#333"/>')
        elif kind < 0.95:
            points = " ".join(f"{rng.uniform(0, 400):.0f},{rng.uniform(0, 300):.0f}" for _ in range(rng.randint(2, 6)))
            parts.append(f'<polyline points="{points}" fill="none" stroke="#555" stroke-width="3"/>')
        else:
            parts.append(f'<text x="{x:.0f}" y="{y:.0f}" font-size="{r:.0f}">label</text>')
    return f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 300">{"".join(parts)}</svg>'


def make_files(folder: Path, count: int) -> int:
    """``count`` files (generated once; kept between runs), every 250th a hostile fixture."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20000)
    hostile = 0
    for i in range(count):
        if i % 250 == 125:
            source = HOSTILE[hostile % len(HOSTILE)]
            hostile += 1
            target = folder / f"{i:05d}_{source.name}"
            data = source.read_bytes()
        else:
            svg = drawing(rng)
            zipped = rng.random() < 0.05
            target = folder / f"{i:05d}.svg{'z' if zipped else ''}"
            data = gzip.compress(svg.encode(), mtime=0) if zipped else svg.encode()
        if not target.exists():
            target.write_bytes(data)
    return hostile


# -- the run --------------------------------------------------------------------------------


def soak(files: int, out: Path, jobs: int, every: int) -> int:
    folder = out / "files"
    hostile = make_files(folder, files)
    results = out / "results.jsonl"
    results.unlink(missing_ok=True)  # lines are counted as they appear
    command = [sys.executable, "-m", "scorer", "score", str(folder), "-o", str(results), "--config", "structural", "--no-cache", "--jobs", str(jobs)]
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=REPO, stderr=subprocess.PIPE, text=True)
    samples: list[Sample] = []
    next_at = every
    while proc.poll() is None:
        time.sleep(0.5)
        lines = results.read_bytes().count(b"\n") if results.exists() else 0
        if lines >= next_at:
            samples.append(sample(proc.pid, lines))
            next_at = lines - lines % every + every
    stderr = proc.stderr.read() if proc.stderr else ""
    wall = time.monotonic() - started
    records = results.read_bytes().count(b"\n")

    # From the end of the warm-up until the last file is in (then the workers are being stopped).
    warm = [s for s in samples if files // 10 <= s.records < files]
    if proc.returncode != 0 or len(warm) < 2:
        print(f"soak: the run failed (exit {proc.returncode}) or was too short to judge; stderr:\n{stderr[-2000:]}", file=sys.stderr)
        return 1
    base = warm[0]
    parent_growth = max(s.parent_rss for s in warm) - base.parent_rss
    worker_growth = max(max(s.worker_rss, default=0) for s in warm) - max(base.worker_rss, default=0)
    fds = sorted({s.fds for s in warm})
    kids = sorted({s.children for s in warm})
    lasting_zombies = sum(1 for a, b in zip(warm, warm[1:], strict=False) if a.zombies and b.zombies)
    codes: dict[str, int] = {}
    for line in results.read_text().splitlines():
        error = json.loads(line).get("error")
        key = error["code"] if error else "ok"
        codes[key] = codes.get(key, 0) + 1

    checks = {
        "one record per file": records == files,
        f"parent RSS growth < {RSS_LIMIT_MB:g} MB": parent_growth < RSS_LIMIT_MB,
        f"largest worker RSS growth < {RSS_LIMIT_MB:g} MB": worker_growth < RSS_LIMIT_MB,
        "open fds constant": fds[-1] - fds[0] <= FD_SLACK,
        "child processes constant": kids == [jobs],
        "no lasting zombies": lasting_zombies == 0,
    }
    print(f"soak: {files:,} files ({hostile} hostile) in {wall:.0f} s ({files / wall:.1f} files/s), {jobs} workers, {len(samples)} samples every {every} records")
    print(f"records: {records:,}; " + ", ".join(f"{k} {n:,}" for k, n in sorted(codes.items(), key=lambda kv: -kv[1])))
    print(f"parent RSS: {base.parent_rss:.1f} MB after warm-up ({base.records:,} files), max {max(s.parent_rss for s in warm):.1f}, "
          f"last {warm[-1].parent_rss:.1f} (growth {parent_growth:+.1f} MB)")  # fmt: skip
    print(f"largest worker RSS: {max(base.worker_rss, default=0):.1f} MB after warm-up, max {max(max(s.worker_rss, default=0) for s in warm):.1f} "
          f"(growth {worker_growth:+.1f} MB)")  # fmt: skip
    print(f"parent open fds: {fds[0]}–{fds[-1]}; child processes: {kids[0]}–{kids[-1]}; samples with a zombie: "
          f"{sum(1 for s in warm if s.zombies)} (two in a row: {lasting_zombies})")  # fmt: skip
    for name, ok in checks.items():
        print(f"  {'PASS' if ok else 'FAIL'}  {name}")
    return 0 if all(checks.values()) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--out", type=Path, default=REPO / "build" / "soak")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--every", type=int, default=250, help="sample every this many records (default 250)")
    args = parser.parse_args()
    return soak(args.files, args.out, args.jobs, args.every)


if __name__ == "__main__":
    sys.exit(main())
