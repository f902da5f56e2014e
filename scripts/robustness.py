#!/usr/bin/env python3
"""``make robustness``: sweep hostile and edge-case SVGs through svgscore and check the targets.

Part 1, the sweep (a gate). Every ``*.svg`` of the resvg test suite
(``../shared/corpus/resvg-tests/tests/``, 1,695 edge cases: malformed attributes, recursive
references, huge values, filters, text) plus ``fixtures/hostile/`` (attacks: XXE, entity
bombs, network and local-file references, resource exhaustion) goes through the public
:class:`scorer.Scorer` with CLIP disabled and one worker per CPU, while a local HTTP server
on 127.0.0.1 counts the requests it receives (``PORT`` in the hostile fixtures is replaced by
its port). Targets: every file exactly one record, no uncaught exception, no outbound
connection, peak RSS < 1.5 GB, wall time < 600 s.

Part 2, renderer fidelity (a figure, not a gate). Every resvg test with a reference PNG is
rendered through svgscore's one rendering entry point (``load_svg`` + ``render``) with each
backend, at the reference's own size (300 px: upstream renders its references at 300 px
"to test scaling"), and compared with the reference, both composited on white. A pixel
*differs* when some channel differs by more than ``CHANNEL_TOLERANCE`` (32/255); a test
*passes* when fewer than ``MAX_DIFFERING`` (1%) of its pixels differ. The references were
made by resvg itself with the suite's own fonts (not shipped), so text tests measure fonts
as much as renderers, and tests that need an external file are refused by svgscore by design.

Usage: ``make robustness`` or ``.venv/bin/python scripts/robustness.py [--no-fidelity]``;
``ROBUSTNESS_JSON=path`` also writes every figure as JSON.
"""

from __future__ import annotations

import argparse
import collections
import http.server
import importlib
import importlib.util
import json
import os
import re
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from scorer import DEFAULT_PROMPT, ScoreItem, Scorer
from scorer.config import Limits
from scorer.errors import ItemError, RenderTimeoutError
from scorer.isolation import PoolStats, WorkerPool
from scorer.load import load_svg
from scorer.render import render

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SUITE = SHARED / "corpus" / "resvg-tests" / "tests"
HOSTILE = ROOT / "fixtures" / "hostile"
SVG_SUFFIXES = (".svg", ".svgz")
PORT_PLACEHOLDER = b"127.0.0.1:PORT"

RSS_LIMIT_MB = 1536  # 1.5 GB
WALL_LIMIT_S = 600.0

CHANNEL_TOLERANCE = 32  # of 255: above anti-aliasing and colour-rounding noise
MAX_DIFFERING = 0.01  # share of pixels; 900 px at 300×300 — the 1-px test frame alone is ~1.3%
FIDELITY_TIMEOUT_S = 10.0
BACKENDS = ("cairosvg", "resvg")
# A reference to anything but a fragment or a data: URL: svgscore renders it as nothing.
_EXTERNAL_REF = re.compile(rb"""href\s*=\s*["'](?!\s*#|\s*data:)""", re.IGNORECASE)


# -- the local HTTP server --------------------------------------------------------------------


class _CountingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CountingHandler)
        self.lock = threading.Lock()
        self.connections = 0
        self.requests: list[str] = []

    def verify_request(self, request: Any, client_address: Any) -> bool:
        with self.lock:
            self.connections += 1
        return True


class _CountingHandler(http.server.BaseHTTPRequestHandler):
    server: _CountingServer

    def _count(self) -> None:
        with self.server.lock:
            self.server.requests.append(f"{self.command} {self.path}")
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_POST = do_PUT = do_OPTIONS = _count

    def log_message(self, *_: Any) -> None:
        pass


# -- part 1: the sweep ------------------------------------------------------------------------


def _files() -> tuple[list[Path], list[Path]]:
    suite = sorted(p for p in SUITE.rglob("*.svg") if p.is_file())
    hostile = sorted(p for p in HOSTILE.rglob("*") if p.suffix.lower() in SVG_SUFFIXES and p.is_file()) if HOSTILE.is_dir() else []
    return suite, hostile


def _item(path: Path, port: int) -> ScoreItem:
    """The hostile fixtures write the live server's address as ``127.0.0.1:PORT``."""
    if path.suffix.lower() == ".svg":
        data = path.read_bytes()
        if PORT_PLACEHOLDER in data:
            return ScoreItem(str(path), DEFAULT_PROMPT, data.replace(PORT_PLACEHOLDER, f"127.0.0.1:{port}".encode()))
    return ScoreItem(str(path), DEFAULT_PROMPT)


def _merge(total: PoolStats, part: PoolStats) -> None:
    total.timeouts += part.timeouts
    total.deaths += part.deaths
    total.network_attempts += part.network_attempts
    total.seconds.extend(part.seconds)


def _cpu_seconds() -> float:
    """User + system CPU of this process and of its reaped children (the workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def sweep(paths: list[Path], port: int, jobs: int, backend: str) -> dict[str, Any]:
    items = [_item(p, port) for p in paths]
    records: collections.Counter[str] = collections.Counter()
    unexpected: list[str] = []
    codes: collections.Counter[str] = collections.Counter()
    problems: list[tuple[str, str, str]] = []  # (path, code, message) worth naming
    escaped: list[tuple[str, str]] = []
    outcomes: dict[str, str] = {}
    ok = 0
    stats = PoolStats()
    expected = {item.path for item in items}
    config = {"clip": {"enabled": False}, "render": {"backend": backend}}
    load_before = os.getloadavg()[0]
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    with Scorer(config, jobs=jobs) as scorer:
        remaining = items
        while remaining:
            done = 0
            try:
                for result in scorer.score_items(remaining):
                    done += 1
                    path = result.path or "?"
                    records[path] += 1
                    if path not in expected:
                        unexpected.append(path)
                    if result.ok:
                        ok += 1
                        outcomes[path] = f"ok {result.score}"
                    else:
                        code, message = (result.error.code, result.error.message) if result.error else ("?", "")
                        codes[code] += 1
                        outcomes[path] = f"{code}: {message}"
                        if code in ("internal_error", "render_timeout") or "worker process died" in message:
                            problems.append((path, code, message))
                remaining = []
            except Exception as exc:  # noqa: BLE001  (count it, name the file, go on)
                culprit = remaining[done].path if done < len(remaining) else "?"
                escaped.append((str(culprit), f"{type(exc).__name__}: {exc}"[:300]))
                remaining = remaining[done + 1 :]
                # The pool's bookkeeping is mid-batch: start afresh, keeping what it counted.
                _merge(stats, scorer.pool.stats)
                scorer.close()
        _merge(stats, scorer.pool.stats)
        parent_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    wall = time.perf_counter() - started
    worker_rss_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # the largest reaped worker
    cpu = _cpu_seconds() - cpu_before
    seconds = np.array(stats.seconds or [0.0])
    return {
        "backend": backend,
        "files": len(items),
        "records": sum(records.values()),
        "files_without_exactly_one_record": sorted(p for p in expected if records[p] != 1),
        "records_for_unknown_paths": unexpected,
        "scored_ok": ok,
        "error_rows_by_code": dict(sorted(codes.items())),
        "internal_errors": codes.get("internal_error", 0),
        "escaped_exceptions": escaped,
        "uncaught_exceptions": codes.get("internal_error", 0) + len(escaped),
        "problem_files": problems,
        "timeouts": stats.timeouts,
        "worker_deaths": stats.deaths,
        "network_attempts_blocked": stats.network_attempts,
        "peak_rss_parent_mb": parent_rss_kb / 1024,
        "peak_rss_worker_mb": worker_rss_kb / 1024,
        "seconds_per_file": {
            "p50": float(np.percentile(seconds, 50)),
            "p99": float(np.percentile(seconds, 99)),
            "max": float(seconds.max()),
        },
        "wall_s": wall,
        "cpu_s": cpu,
        "load_average_before": load_before,
        "load_average_after": os.getloadavg()[0],
        "outcomes": outcomes,
    }


# -- part 2: renderer fidelity ----------------------------------------------------------------


def _on_white(rgba: np.ndarray) -> np.ndarray:
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    return np.rint(rgba[..., :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)).astype(np.int16)


def compare_one(task: tuple[str, str]) -> dict[str, Any]:
    """Render one resvg test with ``backend`` and return the share of pixels that differ from its PNG."""
    svg_path, backend = task
    with Image.open(Path(svg_path).with_suffix(".png")) as image:
        reference = np.asarray(image.convert("RGBA"))
    height, width = reference.shape[:2]
    started = time.perf_counter()
    try:
        raster = render(load_svg(Path(svg_path).read_bytes(), Limits()), max(width, height), backend=backend)
    except ItemError as exc:
        return {"error": exc.code, "message": exc.message, "seconds": time.perf_counter() - started}
    seconds = time.perf_counter() - started
    ours = raster.rgba
    if ours.shape[:2] != (height, width):
        ours = np.asarray(Image.fromarray(ours).resize((width, height), Image.Resampling.LANCZOS))
    differing = (np.abs(_on_white(ours) - _on_white(reference)).max(axis=-1) > CHANNEL_TOLERANCE).mean()
    return {"differing": float(differing), "seconds": seconds}


def fidelity_factory() -> Callable[[tuple[str, str]], dict[str, Any]]:
    """Run in each worker process: the per-file function (this module is imported there by name)."""
    return compare_one


def _importable_self() -> Any | None:
    """This module under an importable name, so worker processes can unpickle its factory."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    try:
        module = importlib.import_module("scripts.robustness")
    except ImportError:
        return None
    same = Path(getattr(module, "__file__", "") or "").resolve() == Path(__file__).resolve()
    return module if same else None


class _Alarm(Exception):
    pass


def _in_process(tasks: list[tuple[str, str]]) -> Iterator[dict[str, Any]]:
    """Fallback without worker processes: a SIGALRM per file (it cannot stop native code mid-call)."""

    def ring(*_: Any) -> None:
        raise _Alarm

    previous = signal.signal(signal.SIGALRM, ring)
    try:
        for task in tasks:
            started = time.perf_counter()
            signal.setitimer(signal.ITIMER_REAL, FIDELITY_TIMEOUT_S)
            try:
                yield compare_one(task)
            except _Alarm:
                yield {"error": "render_timeout", "message": f"over {FIDELITY_TIMEOUT_S:g} s", "seconds": time.perf_counter() - started}
            except Exception as exc:  # noqa: BLE001
                yield {"error": "internal_error", "message": f"{type(exc).__name__}: {exc}"[:300], "seconds": time.perf_counter() - started}
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, previous)


def _run_backend(tasks: list[tuple[str, str]], jobs: int, module: Any | None) -> Iterable[dict[str, Any]]:
    if module is None:
        yield from _in_process(tasks)
        return
    with WorkerPool(module.fidelity_factory, jobs=jobs, timeout_s=FIDELITY_TIMEOUT_S, memory_mb=2048) as pool:
        for outcome in pool.imap(tasks):
            if isinstance(outcome, ItemError):
                seconds = FIDELITY_TIMEOUT_S if isinstance(outcome, RenderTimeoutError) else 0.0
                yield {"error": outcome.code, "message": outcome.message, "seconds": seconds}
            else:
                yield outcome


def fidelity(suite: list[Path], jobs: int) -> dict[str, Any]:
    tests = [p for p in suite if p.with_suffix(".png").is_file()]
    external = {str(p) for p in tests if _EXTERNAL_REF.search(p.read_bytes())}
    module = _importable_self()
    by_backend: dict[str, Any] = {}
    per_file: dict[str, dict[str, Any]] = {str(p.relative_to(SUITE)): {} for p in tests}
    for backend in BACKENDS:
        if backend == "resvg" and importlib.util.find_spec("resvg_py") is None:
            by_backend[backend] = {"available": False, "reason": "resvg_py is not installed (pip install -e '.[resvg]')"}
            continue
        started = time.perf_counter()
        passed: collections.Counter[str] = collections.Counter()
        errors: collections.Counter[str] = collections.Counter()
        render_seconds = 0.0
        failing_external = 0
        for path, outcome in zip(tests, _run_backend([(str(p), backend) for p in tests], jobs, module), strict=True):
            category = path.relative_to(SUITE).parts[0]
            render_seconds += outcome["seconds"]
            per_file[str(path.relative_to(SUITE))][backend] = outcome.get("differing", outcome.get("error"))
            if "error" in outcome:
                errors[outcome["error"]] += 1
            elif outcome["differing"] < MAX_DIFFERING:
                passed[category] += 1
                continue
            failing_external += str(path) in external
        by_backend[backend] = {
            "available": True,
            "passed_by_category": dict(passed),
            "passed": sum(passed.values()),
            "errors_by_code": dict(errors),
            "failing_that_need_external_files": failing_external,
            "render_seconds": render_seconds,
            "files_per_second": len(tests) / render_seconds if render_seconds else None,
            "wall_s": time.perf_counter() - started,
        }
    return {
        "tests": len(tests),
        "tests_by_category": dict(collections.Counter(p.relative_to(SUITE).parts[0] for p in tests)),
        "tests_needing_external_files": len(external),
        "channel_tolerance": CHANNEL_TOLERANCE,
        "max_differing_share": MAX_DIFFERING,
        "workers": "isolated worker processes" if module else "in-process with SIGALRM",
        "backends": by_backend,
        "per_file_differing_share_or_error": per_file,
    }


# -- report -----------------------------------------------------------------------------------


def _targets(s: dict[str, Any], http_requests: int, http_connections: int) -> list[tuple[str, bool, str]]:
    peak = max(s["peak_rss_parent_mb"], s["peak_rss_worker_mb"])
    outbound = s["network_attempts_blocked"] + http_requests + http_connections
    return [
        ("every file exactly one record", not s["files_without_exactly_one_record"] and not s["records_for_unknown_paths"] and s["records"] == s["files"],
         f"{s['records']} records for {s['files']} files"),
        ("0 uncaught exceptions", s["uncaught_exceptions"] == 0, f"{s['uncaught_exceptions']}"),
        ("0 outbound connections", outbound == 0,
         f"{s['network_attempts_blocked']} attempted in workers, {http_requests} HTTP requests / {http_connections} connections received"),
        ("peak RSS < 1.5 GB", peak < RSS_LIMIT_MB, f"{peak:.0f} MB"),
        ("wall < 600 s", s["wall_s"] < WALL_LIMIT_S, f"{s['wall_s']:.1f} s"),
    ]


def print_sweep(s: dict[str, Any], suite_n: int, hostile_n: int, http: _CountingServer, jobs: int) -> list[tuple[str, bool, str]]:
    p = s["seconds_per_file"]
    print(f"ROBUSTNESS SWEEP  ({suite_n} resvg tests + {hostile_n} fixtures/hostile; CLIP off; {jobs} workers; backend {s['backend']})")
    print(f"  files                        {s['files']}")
    print(f"  records                      {s['records']}")
    print(f"  scored ok                    {s['scored_ok']}")
    print(f"  error rows                   {sum(s['error_rows_by_code'].values())}")
    for code, n in s["error_rows_by_code"].items():
        print(f"    {code:<26} {n}")
    print(f"  uncaught exceptions          {s['uncaught_exceptions']}  ({s['internal_errors']} internal_error rows, {len(s['escaped_exceptions'])} escaped the loop)")
    print(f"  timeouts                     {s['timeouts']}")
    print(f"  worker deaths                {s['worker_deaths']}")
    print(f"  network attempts blocked     {s['network_attempts_blocked']}  (in workers, by the audit hook)")
    print(f"  HTTP requests received       {len(http.requests)}  ({http.connections} connections) on 127.0.0.1:{http.server_address[1]}")
    print(f"  peak RSS parent              {s['peak_rss_parent_mb']:.0f} MB")
    print(f"  peak RSS largest worker      {s['peak_rss_worker_mb']:.0f} MB")
    print(f"  seconds per file             p50 {p['p50']:.3f}   p99 {p['p99']:.3f}   max {p['max']:.3f}")
    print(f"  wall time                    {s['wall_s']:.1f} s")
    print(
        f"  cpu time                     {s['cpu_s']:.1f} s  (parent + workers; {os.cpu_count()} CPUs; "
        f"load average {s['load_average_before']:.1f} before, {s['load_average_after']:.1f} after)"
    )
    for path, code, message in s["problem_files"]:
        print(f"    ! {code}: {path}: {message}")
    for path, message in s["escaped_exceptions"]:
        print(f"    ! escaped: {path}: {message}")
    for path in s["files_without_exactly_one_record"]:
        print(f"    ! not exactly one record: {path}")
    for request in http.requests:
        print(f"    ! HTTP request: {request}")
    targets = _targets(s, len(http.requests), http.connections)
    print("TARGETS")
    for name, passed, detail in targets:
        print(f"  {'PASS' if passed else 'FAIL'}  {name:<32} {detail}")
    return targets


def print_hostile(s: dict[str, Any], hostile: list[Path]) -> None:
    if not hostile:
        return
    print(f"HOSTILE FIXTURES ({len(hostile)})")
    for path in hostile:
        outcome = " ".join(s["outcomes"].get(str(path), "no record").split())
        print(f"  {path.name:<40} {outcome[:100]}")


def print_fidelity(f: dict[str, Any]) -> None:
    print()
    print(
        f"RENDERER FIDELITY vs the resvg reference PNGs  ({f['tests']} tests; a pixel differs if a channel on white "
        f"differs by > {f['channel_tolerance']}/255; a test passes if < {f['max_differing_share']:.0%} of pixels differ)"
    )
    backends = f["backends"]
    print(f"  {'category':<16}{'tests':>6}" + "".join(f"{b:>18}" for b in backends))

    def cell(b: str, passed: int, total: int) -> str:
        if not backends[b]["available"]:
            return f"{'n/a':>18}"
        return f"{passed:>9} {passed / total:>7.1%}" if total else f"{'—':>18}"

    for category, total in sorted(f["tests_by_category"].items()):
        print(f"  {category:<16}{total:>6}" + "".join(cell(b, backends[b].get("passed_by_category", {}).get(category, 0), total) for b in backends))
    print(f"  {'all':<16}{f['tests']:>6}" + "".join(cell(b, backends[b].get("passed", 0), f["tests"]) for b in backends))
    rows = [
        ("render errors", lambda r: f"{sum(r['errors_by_code'].values())}"),
        ("  of which timeouts", lambda r: f"{r['errors_by_code'].get('render_timeout', 0)}"),
        ("fails needing ext. files", lambda r: f"{r['failing_that_need_external_files']}"),
        ("render time (s)", lambda r: f"{r['render_seconds']:.1f}"),
        ("files per second", lambda r: f"{r['files_per_second']:.1f}"),
        ("wall (s)", lambda r: f"{r['wall_s']:.1f}"),
    ]
    for label, fmt in rows:
        print(f"  {label:<22}" + "".join(f"{fmt(backends[b]) if backends[b]['available'] else 'n/a':>18}" for b in backends))
    for b, r in backends.items():
        if not r["available"]:
            print(f"  {b}: {r['reason']}")
    print(f"  ({f['tests_needing_external_files']} tests reference external files, which svgscore never loads;")
    print("   text tests depend on the suite's fonts, which are not installed here; render time is the sum over")
    print(f"   files of load+render inside {f['workers']}, timeouts counted at their {FIDELITY_TIMEOUT_S:g} s limit)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--backend", choices=BACKENDS, default="cairosvg", help="renderer for the sweep")
    parser.add_argument("--no-fidelity", action="store_true", help="skip the renderer-fidelity figures")
    args = parser.parse_args(argv)
    if not SUITE.is_dir():
        print(f"robustness: the resvg test suite is missing: expected {SUITE}", file=sys.stderr)
        print("  (it lives in the shared corpus next to this repository: ../shared/corpus/resvg-tests/)", file=sys.stderr)
        return 1
    started = time.perf_counter()
    suite, hostile = _files()
    if not HOSTILE.is_dir():
        print(f"note: {HOSTILE.relative_to(ROOT)}/ does not exist; sweeping the resvg tests only", file=sys.stderr)
    server = _CountingServer()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = sweep(suite + hostile, server.server_address[1], args.jobs, args.backend)
        time.sleep(0.2)  # let a late request land before counting
    finally:
        server.shutdown()
        server.server_close()
    result["http_requests_received"] = len(server.requests)
    result["http_connections_received"] = server.connections
    result["http_requests"] = server.requests
    targets = print_sweep(result, len(suite), len(hostile), server, args.jobs)
    print_hostile(result, hostile)
    figures: dict[str, Any] = {
        "sweep": {k: v for k, v in result.items() if k != "outcomes"},
        "hostile_outcomes": {Path(p).name: o for p, o in result["outcomes"].items() if Path(p).parent == HOSTILE},
        "targets": {name: {"pass": ok, "detail": detail} for name, ok, detail in targets},
    }
    if not args.no_fidelity:
        figures["fidelity"] = fidelity(suite, args.jobs)
        print_fidelity(figures["fidelity"])
    total = time.perf_counter() - started
    figures["total_wall_s"] = total
    print(f"\ntotal wall time {total:.1f} s; robustness targets: {'PASS' if all(ok for _, ok, _ in targets) else 'FAIL'}")
    if out := os.environ.get("ROBUSTNESS_JSON"):
        Path(out).write_text(json.dumps(figures, indent=1, default=str) + "\n", encoding="utf-8")
        print(f"figures written to {out}")
    return 0 if all(ok for _, ok, _ in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
