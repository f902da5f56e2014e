#!/usr/bin/env python3
"""``make bench``: how fast svgscore is, against a hand-written loop and against CLIP alone.

One run measures, on the same inputs — ``fixtures/{ladder,other_prompt,decoy}`` plus the LLM
pelican SVGs of the shared corpus (``../shared/corpus/``: simonw, youngbrioche, jlebensold,
Rmohid), cycled to ``BENCH_FILES`` files (default 300) and copied into a temporary folder under
distinct names, each repeat with a trailing XML comment so that no two files have the same
bytes (the result cache must not see a repeat as a hit):

* **naive** — the loop a user would write: per file ``cairosvg.svg2png`` at 224 px → PIL →
  open_clip preprocess → ``encode_image`` on a batch of 1, the prompt tokenised and encoded
  again for every file, cosine. ViT-B-32 with random weights (weight values do not change
  speed), ``torch.set_num_threads(<cores>)``.
* **bound** — the CLIP image forward alone on pre-rendered, preprocessed tensors, at the best
  of batch sizes 1, 8, 16, 32: the ceiling for anything that runs ViT-B-32 on this CPU; once
  in fp32 and once with model and inputs in bfloat16 (**bound bf16**).
* **first use** — one file with CLIP on that checkpoint, in an empty model cache
  (``SVGSCORE_CACHE_DIR`` points into the bench's temporary folder): the openvino engine
  converts the model once, here; the runs below load the converted model.
* **svgscore cold / warm** — ``Scorer(cache=<empty folder>)`` with CLIP on the same random
  ViT-B-32 at ``clip.precision: auto`` and ``clip.engine: auto``, loaded the way a user loads a
  local checkpoint (``params={"clip": {"weights": <state_dict file>}}``), then a second run on
  the same cache folder. Also the CPU cost per file of each stage (render, each intermediate
  and measure in the workers, CLIP in the parent).
* **deltas** — what bf16 and the engine cost in scores: the default config with each engine at
  fp32 and at bf16 on the distinct inputs (random weights, so the cosines are not meaningful,
  only their change): max and p99 |Δscore|, Spearman and Kendall rank agreement.
* **structural** — CLIP disabled, cache off; its fresh process also gives the time to the first
  result (from ``Scorer(...)`` to the first yielded result).
* **stream** — CLIP disabled, cache off, small in-memory SVGs for ``BENCH_STREAM``
  results (default 10,000): the scorer's resident memory after 1,000 and after all results.
* **harness** — the integrations (issue 15) on the first ``BENCH_HARNESS_FILES`` files (default
  64), tiny test CLIP (``tests/tiny_clip.py``), cache off: ``svgscore serve`` under 8 concurrent
  clients vs a warm library ``Scorer`` (throughput, p50/p99 latency), and ``SvgReward`` on the
  files as model replies vs ``svgscore score DIR --no-cache`` timed from process launch.

``BENCH_PHASES`` picks groups (comma-separated): ``speed`` (all of the above but harness) and
``harness``; default both. ``BENCH_PHASES=harness make bench`` runs the integrations alone.

Every phase runs in its own fresh process (``bench.py --phase NAME``, printing JSON), so each
peak RSS is that phase's own. "End to end" rates are files / wall time in that fresh process
from *before importing* the libraries (torch/open_clip/cairosvg for naive, scorer for
svgscore) to the last result, so model building and worker start-up are inside for both;
loop-only rates are given too. ``BENCH_JSON=path`` also writes the figures as JSON.
Exit status 0 when every target is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import itertools
import json
import os
import platform
import random
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPUS = SHARED / "corpus"
CORPUS_SETS = (
    "simonw__pelican-bicycle",
    "youngbrioche__agentic-pelican-on-a-bicycle",
    "jlebensold__pelican-benchmark",
    "Rmohid__svg-model-compare",
)
FIXTURE_SETS = ("ladder", "other_prompt", "decoy")
DEFAULT_PROMPT = "a pelican riding a bicycle"  # = scorer.DEFAULT_PROMPT; not imported: the parent stays light
MODEL = "ViT-B-32"
BATCH_SIZES = (1, 8, 16, 32)
BOUND_IMAGES = 64  # distinct preprocessed images for the bound; each batch size runs this many...
BOUND_S = 8.0  # ...or for this long, whichever comes first
CORES = os.cpu_count() or 1
BUDGET_S = 570.0  # the whole run; the stream phase gets what the others leave

# Targets.
MIN_VS_NAIVE = 4.0
MIN_VS_BOUND = 1.5  # of the fp32 bound
MIN_VS_BOUND_BF16 = 0.8
MIN_STRUCTURAL_FPS = 55.0
MIN_WARM_SPEEDUP = 20.0
MAX_FIRST_RESULT_S = 2.0
MAX_FIRST_RESULT_CLIP_S = 4.0
MAX_PEAK_RSS_MB = 1536.0
MAX_STREAM_GROWTH_MB = 50.0
MIN_SERVE_VS_LIBRARY = 0.8
MIN_REWARD_VS_CLI = 0.8

HARNESS_FILES = 64  # BENCH_HARNESS_FILES overrides
HARNESS_CLIENTS = 8  # concurrent clients of `svgscore serve`
HARNESS_HANG_GUARD_S = 600.0  # only reached when something is broken
PHASE_GROUPS = ("speed", "harness")  # BENCH_PHASES=harness runs that one alone


# -- helpers shared by the phases ---------------------------------------------------------------


def _rss_mb(pid: int | str = "self", field: str = "VmRSS") -> float:
    """Current (``VmRSS``) or peak (``VmHWM``) resident set size of a process, from /proc; 0 if gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _usage() -> dict[str, float]:
    """Peak RSS (MB) and CPU seconds of this process and of its waited-for children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "parent_peak_rss_mb": me.ru_maxrss / 1024,
        "child_peak_rss_mb": kids.ru_maxrss / 1024,  # the largest single child (a worker)
        "cpu_s": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
    }


class _TreeRss:
    """Samples the summed RSS of this process and the scorer's workers, and each worker's peak.

    Workers' own peaks come from /proc (``VmHWM``): ``RUSAGE_CHILDREN`` is no good here, as
    ``import torch`` forks ``ldconfig`` from the already large parent, and that child's
    inherited RSS (~440 MB) becomes the "largest child".
    """

    def __init__(self, pids: Callable[[], list[int]], every_s: float = 0.1) -> None:
        self.peak_mb = 0.0
        self.worker_peaks: dict[int, float] = {}
        self._pids, self._every = pids, every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self.sample()

    def sample(self) -> None:
        try:
            pids = self._pids()
        except Exception:  # noqa: BLE001  (the pool changes under us)
            return
        self.peak_mb = max(self.peak_mb, _rss_mb() + sum(_rss_mb(p) for p in pids))
        for pid in pids:
            self.worker_peaks[pid] = max(self.worker_peaks.get(pid, 0.0), _rss_mb(pid, "VmHWM"))

    def __enter__(self) -> _TreeRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()  # the last word, while the workers are still there


def _worker_pids(scorer: Any) -> list[int]:
    pool = scorer._pool  # bench-only peek: which worker processes to sample
    return [] if pool is None else [w.process.pid for w in list(pool._workers)]


def _load_items(manifest: Path) -> list[tuple[str, str]]:
    return [(row["path"], row["prompt"]) for row in json.loads(manifest.read_text(encoding="utf-8"))]


# -- phases (each in its own process) -----------------------------------------------------------


def phase_checkpoint(args: argparse.Namespace) -> dict[str, Any]:
    """Save a random-weight ViT-B-32 as a local checkpoint: what a user passes as --clip-weights."""
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model(MODEL, pretrained=None)
    torch.save({k: v.detach().contiguous() for k, v in model.state_dict().items()}, args.out)
    return {"checkpoint": args.out, "mb": Path(args.out).stat().st_size / 2**20}


def phase_naive(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    import io

    import cairosvg
    import open_clip
    import torch
    import torch.nn.functional as F
    from PIL import Image

    torch.set_num_threads(CORES)
    model, _, preprocess = open_clip.create_model_and_transforms(MODEL, pretrained=None)
    model.eval()
    tokenizer = open_clip.get_tokenizer(MODEL)
    items = _load_items(Path(args.manifest))
    loop_started = time.perf_counter()
    failures = 0
    for path, prompt in items:
        try:
            png = cairosvg.svg2png(bytestring=Path(path).read_bytes(), output_width=224)
            image = preprocess(Image.open(io.BytesIO(png))).unsqueeze(0)
        except Exception:  # noqa: BLE001  (a user's loop skips what does not render)
            failures += 1
            continue
        with torch.no_grad():
            image_features = model.encode_image(image)
            text_features = model.encode_text(tokenizer([prompt]))
        F.cosine_similarity(image_features, text_features).item()
    ended = time.perf_counter()
    return {
        "files": len(items),
        "failed": failures,
        "wall_s": ended - started,
        "setup_s": loop_started - started,
        "fps": len(items) / (ended - started),
        "loop_fps": len(items) / (ended - loop_started),
        **_usage(),
    }


def phase_bound(args: argparse.Namespace) -> dict[str, Any]:
    import io

    import cairosvg
    import open_clip
    import torch
    from PIL import Image

    torch.set_num_threads(CORES)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.precision]
    model, _, preprocess = open_clip.create_model_and_transforms(MODEL, pretrained=None)
    model = model.to(dtype=dtype).eval()
    tensors = []
    for path, _ in _load_items(Path(args.manifest)):
        try:
            png = cairosvg.svg2png(bytestring=Path(path).read_bytes(), output_width=224)
            tensors.append(preprocess(Image.open(io.BytesIO(png))))
        except Exception:  # noqa: BLE001
            continue
        if len(tensors) == BOUND_IMAGES:
            break
    pixels = torch.stack(tensors).to(dtype)
    rates = {}
    with torch.inference_mode():
        for size in BATCH_SIZES:
            batch = torch.cat([pixels] * -(-size // len(pixels)))[:size]
            model.encode_image(batch)  # warm-up: the first call at a shape pays one-off costs
            # Each batch size runs until it has seen BOUND_IMAGES images or BOUND_S seconds (≥ 1 batch).
            done, t = 0, time.perf_counter()
            while done < BOUND_IMAGES and (done == 0 or time.perf_counter() - t < BOUND_S):
                start = done % len(pixels)
                batch = torch.cat([pixels[start:], pixels] * -(-size // len(pixels)))[:size]
                model.encode_image(batch)
                done += size
            rates[size] = done / (time.perf_counter() - t)
    best = max(rates, key=rates.__getitem__)
    return {"images": len(tensors), "rates": rates, "best_batch": best, "fps": rates[best], **_usage()}


def phase_svgscore(args: argparse.Namespace) -> dict[str, Any]:
    """Score the files once with CLIP on, through the result cache in ``args.cache``."""
    started = time.perf_counter()
    import scorer.api
    from scorer import ScoreItem, Scorer

    # Measurement only: wall time spent loading CLIP (in this process).
    spent = {"clip_load_s": 0.0}
    load_batched = scorer.api.load_batched

    def timed_load(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        try:
            return load_batched(*a, **k)
        finally:
            spent["clip_load_s"] += time.perf_counter() - t

    scorer.api.load_batched = timed_load

    items = [ScoreItem(path=p, prompt=q) for p, q in _load_items(Path(args.manifest))]
    params = {"clip": {"model": MODEL, "weights": args.weights, "precision": args.precision}}
    created = time.perf_counter()
    first = None
    statuses: dict[str, int] = {}
    clip_values = 0
    with Scorer("default", params=params, cache=args.cache) as svgscore:
        with _TreeRss(lambda: _worker_pids(svgscore)) as tree:
            for result in svgscore.score_items(items):
                if first is None:
                    first = time.perf_counter()
                statuses[result.status] = statuses.get(result.status, 0) + 1
                clip = result.components.get("clip")
                clip_values += clip is not None and clip.value is not None
        worker_peaks = sorted(tree.worker_peaks.values(), reverse=True)
        pool = svgscore._pool
        analysed = len(pool.stats.seconds) if pool is not None else 0
        worker_s = sum(pool.stats.seconds) if pool is not None else 0.0
        jobs = svgscore._jobs
        precision = svgscore.plan.measures["clip"].params.precision
        engine = svgscore.plan.measures["clip"].params.engine
        stage_ms = _stage_ms(svgscore)
    ended = time.perf_counter()
    return {
        "files": len(items),
        "statuses": statuses,
        "clip_scored": clip_values,  # results with a CLIP value: proves CLIP really ran (or was cached)
        "analysed": analysed,  # files that went through the workers (the rest came from the cache)
        "jobs": jobs,
        "wall_s": ended - started,
        "import_s": created - started,
        "first_result_s": (first or ended) - created,
        "fps": len(items) / (ended - started),
        "steady_fps": (len(items) - 1) / (ended - first) if first and ended > first else None,
        "worker_s": worker_s,
        "tree_peak_rss_mb": tree.peak_mb,
        "worker_peak_rss_mb": worker_peaks[:jobs],  # VmHWM of the largest `jobs` workers
        "precision": precision,
        "engine": engine,
        "stage_ms": stage_ms,
        "clip_s": stage_ms.get("clip", 0.0) * analysed / 1000,  # CPU seconds in CLIP's forward passes
        **spent,
        **_usage(),
    }


def phase_structural(args: argparse.Namespace) -> dict[str, Any]:
    started = time.perf_counter()
    from scorer import ScoreItem, Scorer

    items = [ScoreItem(path=p, prompt=q) for p, q in _load_items(Path(args.manifest))]
    imported = time.perf_counter()
    first = first_epoch = None
    with Scorer({"clip": {"enabled": False}}, cache=False) as svgscore:
        for _ in svgscore.score_items(items):
            if first is None:
                first, first_epoch = time.perf_counter(), time.time()
        worker_s = sum(svgscore._pool.stats.seconds) if svgscore._pool else 0.0
        stage_ms = _stage_ms(svgscore)
    ended = time.perf_counter()
    return {
        "files": len(items),
        "wall_s": ended - started,
        "import_s": imported - started,
        "first_result_s": (first or ended) - imported,
        "first_result_epoch": first_epoch,
        "fps": len(items) / (ended - started),
        "worker_s": worker_s,
        "stage_ms": stage_ms,
        **_usage(),
    }


def _stage_ms(svgscore: Any) -> dict[str, float]:
    """CPU milliseconds per analysed file by stage, costliest first."""
    files = max(1, svgscore.stage_files)
    return {k: 1000 * v / files for k, v in sorted(svgscore.stage_seconds.items(), key=lambda kv: -kv[1])}


def phase_deltas(args: argparse.Namespace) -> dict[str, Any]:
    """The default config on the same files with each engine at each precision: how far bf16
    moves scores (default engine), and how far the openvino engine's are from torch's."""
    import numpy as np
    from scipy import stats

    from scorer import ScoreItem, Scorer

    items = [ScoreItem(path=p, prompt=q) for p, q in _load_items(Path(args.manifest))]
    scores: dict[tuple[str, str], list[float | None]] = {}
    cosines: dict[tuple[str, str], list[float | None]] = {}
    runs = (("openvino", "fp32"), ("openvino", "bf16"), ("torch", "fp32"), ("torch", "bf16"))
    for engine, precision in runs:
        params = {"clip": {"model": MODEL, "weights": args.weights, "precision": precision, "engine": engine}}
        with Scorer("default", params=params, cache=False) as svgscore:
            results = list(svgscore.score_items(items))
        scores[engine, precision] = [r.score for r in results]
        cosines[engine, precision] = [r.components["clip"].details.get("cosine") if r.ok else None for r in results]

    def compare(a: tuple[str, str], b: tuple[str, str]) -> dict[str, Any]:
        pairs = np.array([(x, y) for x, y in zip(scores[a], scores[b], strict=True) if x is not None and y is not None])
        delta = np.abs(pairs[:, 0] - pairs[:, 1])
        cos = np.array([(x, y) for x, y in zip(cosines[a], cosines[b], strict=True) if x is not None and y is not None])
        return {
            "files": len(pairs),
            "max_abs_delta": float(delta.max()),
            "p99_abs_delta": float(np.percentile(delta, 99)),
            "mean_abs_delta": float(delta.mean()),
            "changed": int((delta > 0).sum()),
            "spearman": float(stats.spearmanr(pairs[:, 0], pairs[:, 1]).statistic),
            "kendall": float(stats.kendalltau(pairs[:, 0], pairs[:, 1]).statistic),
            "max_abs_cosine_delta": float(np.abs(cos[:, 0] - cos[:, 1]).max()),
        }

    return {
        "bf16_vs_fp32": compare(("openvino", "fp32"), ("openvino", "bf16")),
        "openvino_vs_torch_fp32": compare(("torch", "fp32"), ("openvino", "fp32")),
        "openvino_vs_torch_bf16": compare(("torch", "bf16"), ("openvino", "bf16")),
        "torch_bf16_vs_fp32": compare(("torch", "fp32"), ("torch", "bf16")),
        **_usage(),
    }


def phase_stream(args: argparse.Namespace) -> dict[str, Any]:
    """Structural scoring of small, distinct in-memory SVGs; this process's RSS along the way.

    Small drawings so that 10,000 fit in the time budget: memory held per result does not
    depend on how hard a drawing was to score, and every result still goes the whole way
    (workers, checks, records).
    """
    from scorer import ScoreItem, Scorer

    total, deadline = args.count, time.perf_counter() + args.max_s
    first_sample = min(1000, max(1, total // 10))
    stop = threading.Event()

    def items() -> Iterator[ScoreItem]:
        for i in range(total):
            if stop.is_set():
                return
            yield ScoreItem(path=None, prompt=DEFAULT_PROMPT, data=_stream_svg(i))

    samples: dict[int, dict[str, float]] = {}
    started = time.perf_counter()
    n = 0
    with Scorer({"clip": {"enabled": False}}, cache=False) as svgscore:
        for n, _ in enumerate(svgscore.score_items(items()), start=1):
            if n == first_sample or n == total or (n > first_sample and time.perf_counter() > deadline):
                samples[n] = {"parent_mb": _rss_mb(), "workers_mb": sum(_rss_mb(p) for p in _worker_pids(svgscore))}
            if n > first_sample and time.perf_counter() > deadline:
                stop.set()  # out of time: stop feeding; what is in flight drains below
        workers = _worker_pids(svgscore)
        last = {"parent_mb": _rss_mb(), "workers_mb": sum(_rss_mb(p) for p in workers)}
    wall = time.perf_counter() - started
    samples[n] = last
    a, b = samples[first_sample], samples[n]
    return {
        "results": n,
        "asked": total,
        "stopped_by_time": n < total,
        "first_sample_at": first_sample,
        "samples": samples,
        "growth_mb": b["parent_mb"] - a["parent_mb"],
        "workers_growth_mb": b["workers_mb"] - a["workers_mb"],
        "fps": n / wall,
        "wall_s": wall,
        **_usage(),
    }


def phase_harness(args: argparse.Namespace) -> dict[str, Any]:
    """The integrations (issue 15) on the first ``args.count`` files, all with the tiny test CLIP
    and the default checks, cache off: the library's ``score_items`` on a warm ``Scorer``;
    ``svgscore serve`` (warm: it warms up before listening) answering ``HARNESS_CLIENTS``
    concurrent clients that each POST one SVG at a time to ``/score``; ``SvgReward`` called on the
    files wrapped as model replies (the first call, which starts workers and loads CLIP, and a
    second, what every later training step pays); and ``svgscore score DIR --no-cache`` timed
    from process launch. Every path must give the library's scores, or the phase fails.
    """
    import concurrent.futures

    import httpx
    import numpy as np
    import yaml

    from scorer import ScoreItem, Scorer
    from scorer.integrations.rl import SvgReward, reward_of
    from tests.tiny_clip import build_tiny_clip

    work = Path(args.out)  # a folder of the driver's, removed with it
    tiny = build_tiny_clip(work / "tiny_clip")
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({"clip": tiny.clip_section()}), encoding="utf-8")
    os.environ.pop("SVGSCORE_CLIP_WEIGHTS", None)  # it would override the tiny checkpoint, here and in the children
    rows = _load_items(Path(args.manifest))[: args.count]
    texts = [Path(path).read_text(encoding="utf-8") for path, _ in rows]
    prompts = [prompt for _, prompt in rows]
    n = len(rows)

    with Scorer(str(config), cache=False) as library:
        library.score_svg(texts[0])  # warm: workers started, CLIP loaded, as serve does before listening
        t = time.perf_counter()
        expected = list(library.score_items(ScoreItem(path=None, prompt=q, data=s.encode()) for s, q in zip(texts, prompts, strict=True)))
        library_s = time.perf_counter() - t
    scores = [r.score for r in expected]
    clip_scored = sum(r.components["clip"].value is not None for r in expected if r.ok)

    latencies: list[float] = []
    with _serving(config) as url, httpx.Client(timeout=HARNESS_HANG_GUARD_S) as client:

        def post(i: int) -> float | None:
            sent = time.perf_counter()
            response = client.post(f"{url}/score", json={"svg": texts[i], "prompt": prompts[i]})
            latencies.append(time.perf_counter() - sent)
            response.raise_for_status()
            return response.json()["record"]["score"]

        t = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(HARNESS_CLIENTS) as pool:
            served = list(pool.map(post, range(n)))
        serve_s = time.perf_counter() - t
        health = client.get(f"{url}/health").json()

    replies = [f"Here is the drawing you asked for.\n\n```svg\n{s}\n```\n" for s in texts]
    with SvgReward(str(config), cache=False) as reward:
        t = time.perf_counter()
        first_rewards = reward(["Draw it as one SVG."] * n, replies, subject=prompts)
        reward_first_s = time.perf_counter() - t
        t = time.perf_counter()
        rewards = reward(["Draw it as one SVG."] * n, replies, subject=prompts)
        reward_s = time.perf_counter() - t

    folder, manifest, out = work / "files", work / "manifest.jsonl", work / "cli.jsonl"
    folder.mkdir()
    with manifest.open("w", encoding="utf-8") as f:
        for (path, prompt), text in zip(rows, texts, strict=True):
            (folder / Path(path).name).write_text(text, encoding="utf-8")
            f.write(json.dumps({"path": f"files/{Path(path).name}", "prompt": prompt}) + "\n")
    t = time.perf_counter()
    cli = subprocess.run(
        [sys.executable, "-m", "scorer", "score", str(folder), "--manifest", str(manifest), "--config", str(config), "--no-cache", "-o", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    cli_s = time.perf_counter() - t
    if cli.returncode not in (0, 1):  # 1: some rows failed their gates; still a complete run
        raise SystemExit(f"svgscore score exited {cli.returncode}: {cli.stderr[-2000:]}")
    by_name = {Path(r["path"]).name: r["score"] for r in map(json.loads, out.read_text(encoding="utf-8").splitlines())}
    cli_scores = [by_name[Path(path).name] for path, _ in rows]

    # The same judge everywhere, or the rates compare different work.
    want = [reward_of(r) for r in expected]
    for name, got in (("serve", served), ("cli", cli_scores)):
        if got != scores:
            raise SystemExit(f"harness: {name} scores differ from the library's")
    for name, got in (("reward", rewards), ("reward first call", first_rewards)):
        if not np.allclose(got, want):
            raise SystemExit(f"harness: {name} differs from the library's score / 100")
    p50, p99 = np.percentile(latencies, [50, 99])
    return {
        "files": n,
        "clip_scored": clip_scored,
        "clients": HARNESS_CLIENTS,
        "library_fps": n / library_s,
        "serve_fps": n / serve_s,
        "serve_p50_s": float(p50),
        "serve_p99_s": float(p99),
        "serve_batches": health["batches"],
        "reward_fps": n / reward_s,
        "reward_first_call_fps": n / reward_first_s,
        "cli_fps": n / cli_s,
        **_usage(),
    }


@contextlib.contextmanager
def _serving(config: Path) -> Iterator[str]:
    """``svgscore serve`` on a free loopback port, as a user starts it; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "scorer", "serve", "--port", "0", "--config", str(config)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    found: list[str] = []
    ready = threading.Event()

    def drain() -> None:  # keep reading, or the access log would fill the pipe and block the server
        for line in process.stderr:
            if not found and (match := re.search(r"listening on (http://[\d.]+:\d+)", line)):
                found.append(match.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        if not ready.wait(HARNESS_HANG_GUARD_S) or not found:
            raise SystemExit(f"svgscore serve did not start (exit {process.poll()})")
        yield found[0]
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _stream_svg(i: int) -> bytes:
    """Two wheels and a frame, placed by ``i``: distinct bytes, a drawing worth scoring."""
    x, r = 60 + i % 97, 30 + i % 13
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 300">'
        f'<circle cx="{x}" cy="200" r="{r}" fill="none" stroke="#222" stroke-width="6"/>'
        f'<circle cx="{x + 4 * r}" cy="200" r="{r}" fill="none" stroke="#222" stroke-width="6"/>'
        f'<path d="M{x} 200 L{x + 2 * r} 150 L{x + 4 * r} 200 Z" fill="none" stroke="#c33" stroke-width="5"/>'
        f"</svg>"
    ).encode()


PHASES = {
    "checkpoint": phase_checkpoint,
    "naive": phase_naive,
    "bound": phase_bound,
    "svgscore": phase_svgscore,
    "deltas": phase_deltas,
    "structural": phase_structural,
    "stream": phase_stream,
    "harness": phase_harness,
}


# -- the driver -----------------------------------------------------------------------------------


def _run_phase(name: str, *extra: str) -> dict[str, Any]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    print(f"  {name} ...", end="", flush=True)
    busy_before = _busy_cpu_s()
    launched, t = time.time(), time.perf_counter()
    proc = subprocess.run(
        [sys.executable, __file__, "--phase", name, *extra], env=env, capture_output=True, text=True, check=False
    )
    busy = _busy_cpu_s() - busy_before
    if proc.returncode != 0 or not proc.stdout.strip():
        print(" failed")
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"bench: phase {name} failed (exit {proc.returncode})")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_wall_s"] = time.perf_counter() - t
    out["launched_epoch"] = launched
    # CPU time the whole machine spent during the phase beyond the phase's own processes: other
    # work sharing the cores (start-up before the phase's own accounting begins counts as other).
    out["other_cpu_share"] = min(1.0, max(0.0, busy - out.get("cpu_s", 0.0)) / (out["process_wall_s"] * CORES))
    shared = f" (other processes used {100 * out['other_cpu_share']:.0f}% of the CPUs)" if out["other_cpu_share"] > 0.05 else ""
    print(f" {out['process_wall_s']:.1f} s{shared}")
    return out


def _busy_cpu_s() -> float:
    """Non-idle CPU seconds of the whole machine since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    busy = sum(fields[:8]) - fields[3] - fields[4]  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def _inputs(folder: Path, count: int) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """Fixtures + corpus sample, cycled to ``count`` distinct files in ``folder``."""
    prompts = {}
    with open(ROOT / "fixtures" / "prompts.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            prompts[str((ROOT / "fixtures" / row["path"]).resolve())] = row["prompt"]
    sources: list[Path] = []
    for name in FIXTURE_SETS:
        sources += sorted((ROOT / "fixtures" / name).rglob("*.svg"))
    fixtures = len(sources)
    corpus: list[Path] = []
    if CORPUS.is_dir():
        for name in CORPUS_SETS:
            found = sorted((CORPUS / name).rglob("*.svg"))
            if not found:
                print(f"note: {CORPUS / name} has no SVGs; skipped")
            corpus += found
        random.Random(0).shuffle(corpus)  # a fixed sample order: the sets interleave when cycled
    else:
        print(f"note: the shared corpus is absent ({CORPUS}); benchmarking the fixtures only")
    sources += corpus
    manifest = []
    for i, source in enumerate(itertools.islice(itertools.cycle(sources), count)):
        data = source.read_bytes()
        repeat = i // len(sources)
        if repeat:
            data += f"\n<!-- bench copy {repeat} -->\n".encode()  # new bytes, same drawing
        target = folder / f"{i:05d}_{source.stem}.svg"
        target.write_bytes(data)
        manifest.append({"path": str(target), "prompt": prompts.get(str(source.resolve()), DEFAULT_PROMPT), "source": str(source)})
    kb = sum(Path(m["path"]).stat().st_size for m in manifest) / 1024
    return manifest, {"distinct_sources": len(sources), "fixtures": fixtures, "corpus": len(corpus), "total_kb": kb}


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    torch_version = subprocess.run(
        [sys.executable, "-c", "import torch, open_clip; print(torch.__version__, open_clip.__version__)"],
        capture_output=True, text=True, check=False,
    ).stdout.split()
    git = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True, text=True, check=False)
    return {
        "svgscore_commit": git.stdout.strip() or "unknown",
        "nproc": CORES,
        "cpu": cpu,
        "mem_gb": round(mem_gb, 1),
        "python": platform.python_version(),
        "torch": torch_version[0] if torch_version else "?",
        "open_clip": torch_version[1] if len(torch_version) > 1 else "?",
        "loadavg_at_start": os.getloadavg()[0],
    }


def _groups() -> tuple[str, ...]:
    """The phase groups ``BENCH_PHASES`` asks for (comma-separated), by default all of them."""
    asked = tuple(g.strip() for g in os.environ.get("BENCH_PHASES", ",".join(PHASE_GROUPS)).split(",") if g.strip())
    if unknown := set(asked) - set(PHASE_GROUPS):
        raise SystemExit(f"bench: BENCH_PHASES: unknown {', '.join(sorted(unknown))} (known: {', '.join(PHASE_GROUPS)})")
    return asked


def main() -> int:
    started = time.perf_counter()
    groups = _groups()
    harness_files = int(os.environ.get("BENCH_HARNESS_FILES", str(HARNESS_FILES)))
    count = int(os.environ.get("BENCH_FILES", "300")) if "speed" in groups else harness_files
    stream = int(os.environ.get("BENCH_STREAM", "10000"))
    machine = _machine()
    print(
        f"machine: {machine['nproc']} CPUs ({machine['cpu']}), {machine['mem_gb']} GB RAM, Python {machine['python']}, "
        f"torch {machine['torch']}, open_clip {machine['open_clip']}; load average {machine['loadavg_at_start']:.2f}; "
        f"svgscore at {machine['svgscore_commit']}"
    )
    if machine["loadavg_at_start"] > 0.5:
        print("warning: other processes are using the CPU: the figures below will be lower than on an idle machine")
    with tempfile.TemporaryDirectory(prefix="svgscore-bench-") as tmp:
        work = Path(tmp)
        # svgscore's model cache (the openvino engine's converted models) starts empty, in here.
        os.environ["SVGSCORE_CACHE_DIR"] = str(work / "svgscore-cache")
        (work / "files").mkdir()
        manifest, inputs = _inputs(work / "files", count)
        (work / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        (work / "distinct.json").write_text(json.dumps(manifest[: inputs["distinct_sources"]]), encoding="utf-8")
        print(
            f"inputs: {count} files ({inputs['total_kb']:.0f} KB) cycled from {inputs['distinct_sources']} distinct SVGs "
            f"({inputs['fixtures']} fixtures + {inputs['corpus']} corpus)" + (f"; stream: {stream} small in-memory SVGs" if "speed" in groups else "")
        )
        m = ["--manifest", str(work / "manifest.json")]
        ph: dict[str, dict[str, Any]] = {}
        if "harness" in groups:
            (work / "harness").mkdir()
            ph["harness"] = _run_phase("harness", *m, "--count", str(harness_files), "--out", str(work / "harness"))
        if "speed" in groups:
            _speed_phases(ph, work, m, stream, started)
    figures: dict[str, Any] = {"machine": machine, "inputs": inputs, "phases": ph}
    targets: list[tuple[str, bool, str]] = []
    if "speed" in groups:
        figures |= _figures(ph, count, stream)
        targets += _report(figures, ph)
    if "harness" in groups:
        figures |= _harness_figures(ph["harness"])
        targets += _harness_report(figures, ph["harness"])
    figures["loadavg_at_end"] = os.getloadavg()[0]
    print(f"  load average at the end {figures['loadavg_at_end']:.2f} (at the start {machine['loadavg_at_start']:.2f})")
    print("\ntargets")
    for name, passed, detail in targets:
        print(f"  {'PASS' if passed else 'FAIL'}  {name:<34} {detail}")
    figures["targets"] = {name: {"pass": passed, "detail": detail} for name, passed, detail in targets}
    ok = all(passed for _, passed, _ in targets)
    figures["total_wall_s"] = time.perf_counter() - started
    print(f"\ntotal wall time {figures['total_wall_s']:.0f} s; bench targets: {'PASS' if ok else 'FAIL'}")
    if out := os.environ.get("BENCH_JSON"):
        Path(out).write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
        print(f"figures written to {out}")
    return 0 if ok else 1


def _speed_phases(ph: dict[str, dict[str, Any]], work: Path, m: list[str], stream: int, started: float) -> None:
    """The speed and memory phases (issue 13), into ``ph``."""
    checkpoint = str(work / "vit-b-32-random.pt")
    ph["checkpoint"] = _run_phase("checkpoint", "--out", checkpoint)
    ph["naive"] = _run_phase("naive", *m)
    ph["bound"] = _run_phase("bound", *m, "--precision", "fp32")
    ph["bound_bf16"] = _run_phase("bound", *m, "--precision", "bf16")
    # The checkpoint's first use: the openvino engine converts it (once; later runs load the result).
    (work / "first.json").write_text(json.dumps(json.loads((work / "manifest.json").read_text())[:1]), encoding="utf-8")
    first = ["--manifest", str(work / "first.json"), "--cache", str(work / "cache-first"), "--weights", checkpoint, "--precision", "auto"]
    ph["first_use"] = _run_phase("svgscore", *first)
    cache = ["--cache", str(work / "cache"), "--weights", checkpoint, "--precision", "auto"]
    ph["cold"] = _run_phase("svgscore", *m, *cache)
    ph["warm"] = _run_phase("svgscore", *m, *cache)
    ph["structural"] = _run_phase("structural", *m)
    distinct = ["--manifest", str(work / "distinct.json"), "--weights", checkpoint]
    ph["deltas"] = _run_phase("deltas", *distinct)
    # The stream gets what is left of the ~10 minute budget (BENCH_STREAM_MAX_S overrides).
    max_s = float(os.environ.get("BENCH_STREAM_MAX_S") or max(60.0, BUDGET_S - (time.perf_counter() - started)))
    print(f"  (stream: up to {stream} results or {max_s:.0f} s, whichever comes first)")
    ph["stream"] = _run_phase("stream", "--count", str(stream), "--max-s", str(max_s))


def _figures(ph: dict[str, dict[str, Any]], count: int, stream: int) -> dict[str, Any]:
    cold, warm, structural, bf16 = ph["cold"], ph["warm"], ph["structural"], ph["bound_bf16"]
    jobs = cold["jobs"]
    # The scorer's own peak plus each worker's own peak: an upper bound on the tree's peak.
    peak = cold["parent_peak_rss_mb"] + sum(cold["worker_peak_rss_mb"])
    return {
        # The keys promised by the README, then extras.
        "naive_fps": ph["naive"]["fps"],
        "bound_fps": ph["bound"]["fps"],
        "svgscore_fps": cold["fps"],
        "warm_fps": warm["fps"],
        "structural_fps": structural["fps"],
        "ratio_vs_naive": cold["fps"] / ph["naive"]["fps"],
        "ratio_vs_bound": cold["fps"] / ph["bound"]["fps"],
        "warm_speedup": warm["fps"] / cold["fps"],
        "peak_rss_mb": peak,
        "first_result_s": structural["first_result_s"],
        "bound_bf16_fps": bf16["fps"],
        "ratio_vs_bound_bf16": cold["fps"] / bf16["fps"],
        "precision": cold["precision"],
        "tree_peak_rss_mb": cold["tree_peak_rss_mb"],
        "stage_ms": cold["stage_ms"],
        "structural_stage_ms": structural["stage_ms"],
        "first_result_clip_s": cold["first_result_s"],
        "precision_deltas": ph["deltas"]["bf16_vs_fp32"],
        "engine": cold["engine"],
        "engine_deltas": {k: ph["deltas"][k] for k in ("openvino_vs_torch_fp32", "openvino_vs_torch_bf16", "torch_bf16_vs_fp32")},
        "first_use_s": ph["first_use"]["first_result_s"],
        "first_use_clip_load_s": ph["first_use"]["clip_load_s"],
        "bound_bf16_rates": bf16["rates"],
        "files": count,
        "stream_results": ph["stream"]["results"],
        "stream_asked": stream,
        "stream_rss_growth_mb": ph["stream"]["growth_mb"],
        "stream_workers_rss_growth_mb": ph["stream"]["workers_growth_mb"],
        "first_result_from_launch_s": structural["first_result_epoch"] - structural["launched_epoch"],
        "naive_loop_fps": ph["naive"]["loop_fps"],
        "svgscore_steady_fps": cold["steady_fps"],
        "bound_rates": ph["bound"]["rates"],
        "bound_best_batch": ph["bound"]["best_batch"],
        "peak_rss_parent_mb": cold["parent_peak_rss_mb"],
        "peak_rss_workers_mb": cold["worker_peak_rss_mb"],
        "peak_rss_children_rusage_mb": cold["child_peak_rss_mb"],
        "peak_rss_tree_sampled_mb": cold["tree_peak_rss_mb"],
        "jobs": jobs,
        "cpu_s_per_file": {k: ph[k]["cpu_s"] / count for k in ("naive", "cold", "warm", "structural")},
        # Contention-robust ratios: CPU seconds per file rather than files per second.
        "cpu_ratio_vs_naive": ph["naive"]["cpu_s"] / cold["cpu_s"],
    }


def _report(f: dict[str, Any], ph: dict[str, dict[str, Any]]) -> list[tuple[str, bool, str]]:
    """Print the speed figures; return their targets."""
    cold, warm, st, naive, stream = ph["cold"], ph["warm"], ph["structural"], ph["naive"], ph["stream"]
    cpu = f["cpu_s_per_file"]
    print(f"\nfigures ({f['files']} files; rates in files/s, end to end in a fresh process unless noted)")
    rows = [
        ("naive loop", f"{f['naive_fps']:8.2f}", f"loop only {f['naive_loop_fps']:.2f}; setup {naive['setup_s']:.1f} s; {naive['failed']} files failed to render; {cpu['naive']:.2f} CPU s/file"),
        ("bound (CLIP image forward)", f"{f['bound_fps']:8.2f}", "fp32 images/s by batch size: " + ", ".join(f"{b}: {r:.1f}" for b, r in f["bound_rates"].items()) + f" (best {f['bound_best_batch']})"),
        ("bound bf16", f"{f['bound_bf16_fps']:8.2f}", "bf16 images/s by batch size: " + ", ".join(f"{b}: {r:.1f}" for b, r in f["bound_bf16_rates"].items()) + f" (best {ph['bound_bf16']['best_batch']})"),
        (f"svgscore, CLIP {f['engine']} {f['precision']}, cold", f"{f['svgscore_fps']:8.2f}", f"after the first result {cold['steady_fps']:.2f}; start-up to first result {cold['first_result_s']:.1f} s (CLIP load {cold['clip_load_s']:.1f} s); CLIP forward {cold['clip_s']:.1f} CPU s; worker time {cold['worker_s']:.0f} s over {cold['jobs']} workers; {cpu['cold']:.3f} CPU s/file"),
        ("svgscore, CLIP, warm cache", f"{f['warm_fps']:8.2f}", f"{f['files'] - warm['analysed']} of {f['files']} from the cache; {warm['wall_s']:.2f} s"),
        ("structural only (no CLIP)", f"{f['structural_fps']:8.2f}", f"worker time {st['worker_s']:.0f} s; {cpu['structural']:.3f} CPU s/file"),
        ("stream (small, in memory)", f"{stream['fps']:8.2f}", f"{stream['results']} results in {stream['wall_s']:.0f} s"),
    ]
    for name, value, note in rows:
        print(f"  {name:<28} {value}   {note}")
    print(
        f"  ratio svgscore/naive {f['ratio_vs_naive']:.2f} (CPU s per file: {f['cpu_ratio_vs_naive']:.2f})   svgscore/bound {f['ratio_vs_bound']:.2f}   "
        f"svgscore/bound bf16 {f['ratio_vs_bound_bf16']:.2f}   warm_speedup {f['warm_speedup']:.1f}"
    )
    print("  CPU ms per file by stage, svgscore with CLIP: " + ", ".join(f"{k} {v:.1f}" for k, v in f["stage_ms"].items() if v >= 0.05))
    print("  CPU ms per file by stage, structural: " + ", ".join(f"{k} {v:.1f}" for k, v in f["structural_stage_ms"].items() if v >= 0.05))
    for name, d in {"bf16 vs fp32": f["precision_deltas"], **{k.replace("_", " "): v for k, v in f["engine_deltas"].items()}}.items():
        print(
            f"  {name} (default config, {d['files']} distinct files, random ViT-B-32): |Δscore| max {d['max_abs_delta']:.3f}, "
            f"p99 {d['p99_abs_delta']:.3f}, mean {d['mean_abs_delta']:.4f} ({d['changed']} changed); Spearman {d['spearman']:.4f}, "
            f"Kendall {d['kendall']:.4f}; |Δcosine| max {d['max_abs_cosine_delta']:.4f}"
        )
    print(
        f"  first use of the checkpoint ({f['engine']} engine: converted once, then reused): first result {f['first_use_s']:.1f} s "
        f"(CLIP load {f['first_use_clip_load_s']:.1f} s)"
    )
    print(
        f"  first result (structural, Scorer() → first result, fresh process) {f['first_result_s']:.2f} s; "
        f"from process launch {f['first_result_from_launch_s']:.2f} s"
    )
    print(
        f"  peak RSS, svgscore with ViT-B-32 (cold run): parent {f['peak_rss_parent_mb']:.0f} MB (ru_maxrss) + workers "
        + " + ".join(f"{w:.0f}" for w in f["peak_rss_workers_mb"])
        + f" MB (VmHWM) = {f['peak_rss_mb']:.0f} MB; sampled whole-tree peak {f['peak_rss_tree_sampled_mb']:.0f} MB; "
        f"RUSAGE_CHILDREN (the largest child ever waited for) {f['peak_rss_children_rusage_mb']:.0f} MB"
    )
    s = stream["samples"]
    a, b = str(stream["first_sample_at"]), str(stream["results"])
    print(
        f"  streaming RSS, parent: {s[a]['parent_mb']:.1f} MB after {a} results, {s[b]['parent_mb']:.1f} MB after {b} "
        f"(growth {f['stream_rss_growth_mb']:+.1f} MB; workers together {f['stream_workers_rss_growth_mb']:+.1f} MB)"
        + (f"; stopped by the time limit before the {stream['asked']} asked (BENCH_STREAM)" if stream["stopped_by_time"] else "")
    )
    if cold["clip_scored"] != cold["files"] - cold["statuses"].get("error", 0):
        print(f"  warning: only {cold['clip_scored']} results carry a CLIP value: CLIP did not run on every file")
    shared = {k: v["other_cpu_share"] for k, v in ph.items() if v["other_cpu_share"] > 0.1}
    if shared:
        print(
            "  note: other processes used the CPU during "
            + ", ".join(f"{k} ({100 * v:.0f}% of the cores)" for k, v in shared.items())
            + ": those figures are lower than on an idle machine"
        )
    return [
        ("svgscore ≥ 4× naive", f["ratio_vs_naive"] >= MIN_VS_NAIVE, f"{f['ratio_vs_naive']:.2f}×"),
        ("svgscore ≥ 1.5× fp32 bound", f["ratio_vs_bound"] >= MIN_VS_BOUND, f"{f['ratio_vs_bound']:.2f}×"),
        ("svgscore ≥ 0.8× bf16 bound", f["ratio_vs_bound_bf16"] >= MIN_VS_BOUND_BF16, f"{f['ratio_vs_bound_bf16']:.2f}×"),
        ("structural ≥ 55 files/s", f["structural_fps"] >= MIN_STRUCTURAL_FPS, f"{f['structural_fps']:.1f} files/s"),
        ("warm ≥ 20× cold", f["warm_speedup"] >= MIN_WARM_SPEEDUP, f"{f['warm_speedup']:.1f}×"),
        ("first result ≤ 2 s (structural)", f["first_result_s"] <= MAX_FIRST_RESULT_S, f"{f['first_result_s']:.2f} s"),
        ("first result ≤ 4 s (with CLIP)", f["first_result_clip_s"] <= MAX_FIRST_RESULT_CLIP_S, f"{f['first_result_clip_s']:.2f} s"),
        ("tree peak RSS ≤ 1.5 GB", f["tree_peak_rss_mb"] <= MAX_PEAK_RSS_MB, f"{f['tree_peak_rss_mb']:.0f} MB sampled (sum of peaks {f['peak_rss_mb']:.0f} MB)"),
        ("streaming RSS growth < 50 MB", f["stream_rss_growth_mb"] < MAX_STREAM_GROWTH_MB, f"{f['stream_rss_growth_mb']:+.1f} MB over {f['stream_results'] - stream['first_sample_at']} results"),
    ]


def _harness_figures(h: dict[str, Any]) -> dict[str, Any]:
    return {
        "serve_vs_library": h["serve_fps"] / h["library_fps"],
        "serve_p99_s": h["serve_p99_s"],
        "reward_vs_cli": h["reward_fps"] / h["cli_fps"],
        "serve_p50_s": h["serve_p50_s"],
        "reward_first_call_vs_cli": h["reward_first_call_fps"] / h["cli_fps"],
        "harness_files": h["files"],
        **{k: h[k] for k in ("library_fps", "serve_fps", "reward_fps", "reward_first_call_fps", "cli_fps")},
    }


def _harness_report(f: dict[str, Any], h: dict[str, Any]) -> list[tuple[str, bool, str]]:
    """Print the integrations' figures; return their targets."""
    print(f"\nintegrations ({h['files']} files, tiny test CLIP + default checks, cache off; files/s)")
    rows = [
        ("library, warm Scorer", h["library_fps"], "Scorer.score_items on the SVG texts, after a warm-up"),
        (f"serve, {h['clients']} clients", h["serve_fps"], f"one SVG per POST /score; latency p50 {h['serve_p50_s']:.2f} s, p99 {h['serve_p99_s']:.2f} s; {h['serve_batches']} scoring passes (incl. warm-up)"),
        ("SvgReward, held", h["reward_fps"], f"a batch of {h['files']} replies, second call; the first call (workers, CLIP load) {h['reward_first_call_fps']:.2f}"),
        ("svgscore score --no-cache", h["cli_fps"], "from process launch to exit"),
    ]
    for name, value, note in rows:
        print(f"  {name:<28} {value:8.2f}   {note}")
    if h["clip_scored"] == 0:
        print("  warning: no result carries a CLIP value: CLIP did not run")
    if h["other_cpu_share"] > 0.1:
        print(f"  note: other processes used {100 * h['other_cpu_share']:.0f}% of the cores during this phase")
    return [
        ("serve ≥ 0.8× library (8 clients)", f["serve_vs_library"] >= MIN_SERVE_VS_LIBRARY, f"{f['serve_vs_library']:.2f}×; p99 {f['serve_p99_s']:.2f} s"),
        ("reward ≥ 0.8× CLI files/s", f["reward_vs_cli"] >= MIN_REWARD_VS_CLI, f"{f['reward_vs_cli']:.2f}× (first call {f['reward_first_call_vs_cli']:.2f}×)"),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phase", choices=sorted(PHASES), help="internal: run one phase and print its JSON")
    parser.add_argument("--manifest")
    parser.add_argument("--cache")
    parser.add_argument("--weights")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--out")
    parser.add_argument("--count", type=int)
    parser.add_argument("--max-s", type=float, default=float("inf"))
    cli = parser.parse_args()
    if cli.phase:
        print(json.dumps(PHASES[cli.phase](cli)))
        sys.exit(0)
    sys.exit(main())
