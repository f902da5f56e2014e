"""The golden scores: the fixtures scored with the packaged ``structural`` config, committed, so that
a change that moves scores (a dependency upgrade, a new cairo, an edited check or weight) fails
``tests/test_golden.py`` instead of silently shifting every user's numbers.

Regenerate after an intended change, and read what moved::

    make golden          # = HF_HUB_OFFLINE=1 .venv/bin/python -m tests.golden_scores

What may differ between machines, and why the tolerances below are not zero: on one machine
svgscore is bit-for-bit deterministic, but across machines (1) cairo's anti-aliasing and pixman's
SIMD code paths can shade edge pixels differently, which reaches the pixel-based checks
(not_blank, contrast, detail, layering, shading); (2) numpy's SIMD reductions and libm may round
the last bits of a float differently (values are rounded to 6 decimals, scores to 4); (3) the OCR
model behind the ``outlined_text`` gate runs on onnxruntime, whose kernels differ by CPU
(AVX2/AVX-512/NEON), so a confidence near the reading threshold could differ. Geometry-based
checks (parses, element_count, bicycle_present, pelican_features, ...) are exact.

A difference larger than the tolerance is one a user would see: scores are shown with one
decimal (0.05 is half of that), component values with two (0.005 is half of that).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from scorer.compare.leaderboard import read_results
from scorer.record import Provenance, ScoreResult, provenance_differences

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "golden" / "structural_scores.json"
CONFIG = "structural"
FOLDERS = ("fixtures/ladder", "fixtures/attacks", "fixtures/other_prompt", "fixtures/decoy")
MANIFEST = "fixtures/prompts.csv"
SCORE_TOLERANCE = 0.05  # score points
VALUE_TOLERANCE = 0.005  # component values in [0, 1]
REGENERATE = "make golden"


def score_fixtures(folder: Path) -> list[ScoreResult]:
    """Score the fixtures as ``make demo`` does (the CLI, from the repository root, so paths are
    recorded relative to it), with the packaged structural config, no cache; read the JSONL back."""
    out = folder / "golden.jsonl"
    command = [sys.executable, "-m", "scorer", "score", *FOLDERS, "--manifest", MANIFEST, "--config", CONFIG, "--no-cache", "-o", str(out)]
    done = subprocess.run(command, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"scoring the fixtures failed (exit {done.returncode}):\n{done.stderr}")
    return read_results(out)


def golden_of(records: list[ScoreResult]) -> dict[str, Any]:
    """What is committed: per file its status, error code, score and each component's value; and
    the provenance that made them, to explain a later difference."""
    return {
        "about": f"Scores of {', '.join(FOLDERS)} under --config {CONFIG}; checked by tests/test_golden.py "
        f"(tolerance {SCORE_TOLERANCE} points, {VALUE_TOLERANCE} per component). Regenerate: {REGENERATE}.",
        "provenance": asdict(records[0].provenance),
        "files": {
            r.path: {
                "status": r.status,
                "error": r.error.code if r.error else None,
                "score": r.score,
                "components": {name: c.value for name, c in r.components.items()},
            }
            for r in records
        },
    }


def moves(golden: dict[str, Any], current: dict[str, Any], *, score_tolerance: float = SCORE_TOLERANCE, value_tolerance: float = VALUE_TOLERANCE) -> list[str]:
    """Every file whose status, error, score or a component value moved by more than the
    tolerance, as one line each; files and components only on one side too."""
    lines = []
    before, after = golden["files"], current["files"]
    for path in sorted(set(before) | set(after)):
        if path not in after or path not in before:
            lines.append(f"{path}: {'no longer scored' if path not in after else 'new'}")
            continue
        old, new = before[path], after[path]
        changes = [f"{key} {old[key]} → {new[key]}" for key in ("status", "error") if old[key] != new[key]]
        if _moved(old["score"], new["score"], score_tolerance):
            changes.append(f"score {_num(old['score'])} → {_num(new['score'])}")
        for name in sorted(set(old["components"]) | set(new["components"])):
            a, b = old["components"].get(name, "absent"), new["components"].get(name, "absent")
            if "absent" in (a, b) or _moved(a, b, value_tolerance):
                changes.append(f"{name} {_num(a)} → {_num(b)}")
        if changes:
            lines.append(f"{path}: {'; '.join(changes)}")
    return lines


def judge_changes(golden: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """What differs between the provenance that made the golden file and today's: the likely cause."""
    return [str(d) for d in provenance_differences(Provenance(**golden["provenance"]), Provenance(**current["provenance"]))]


def _moved(a: float | None, b: float | None, tolerance: float) -> bool:
    if a is None or b is None:
        return a is not b
    return abs(a - b) > tolerance


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def main() -> None:
    """Score the fixtures, print what moved against the committed file (any amount), write it."""
    with tempfile.TemporaryDirectory() as folder:
        current = golden_of(score_fixtures(Path(folder)))
    if GOLDEN.exists():
        golden = json.loads(GOLDEN.read_text(encoding="utf-8"))
        moved = moves(golden, current, score_tolerance=0.0, value_tolerance=0.0)
        beyond = {line.split(": ", 1)[0] for line in moves(golden, current)}
        print(f"{len(moved)} of {len(current['files'])} files moved ({len(beyond)} beyond the test's tolerance, marked *):")
        for line in moved:
            print(f"  {'*' if line.split(': ', 1)[0] in beyond else ' '} {line}")
        for line in judge_changes(golden, current):
            print(f"  judge: {line}")
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(current, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN.relative_to(REPO)}")


if __name__ == "__main__":
    main()
