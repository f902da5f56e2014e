"""Turn the metadata of ../shared/corpus/ into label files for ``svgscore validate``.

The corpus has no human ratings. Every label written here is a *proxy*, derived from what
the sources recorded about how the drawings were made:

* ``jlebensold_self_scores.csv`` (votes): within one agent's run, the round the agent scored
  higher (0–40, self-judged) wins; equal self-scores are ties. Never across agents: upstream
  warns that self-scores are not comparable across models.
* ``youngbrioche_iterations.csv`` (votes): within one agentic run, every later iteration
  beats every earlier one (the agent looked at its render and tried to improve it).
* ``youngbrioche_iteration_ranking.csv`` (ranking, path,rank,group): the same order as ranks,
  one group per run.
* ``model_siblings.csv`` (votes): same prompt, same vendor and generation, the larger model
  wins (e.g. gpt-4o over gpt-4o-mini), from simonw__pelican-bicycle and Rmohid__svg-model-compare.
* ``qwen_size_series.txt`` (ranking, one path per line, best first): Rmohid's Qwen series,
  from the full model down to the smallest, as the upstream page orders it.

Usage: python scripts/corpus_votes.py OUT_DIR [--corpus DIR]   (exit 1 when the corpus is absent)
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

DEFAULT_CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
JLEBENSOLD = "jlebensold__pelican-benchmark"
YOUNGBRIOCHE = "youngbrioche__agentic-pelican-on-a-bicycle"
SIMONW = "simonw__pelican-bicycle"
RMOHID = "Rmohid__svg-model-compare"

# (larger, smaller): same vendor, same generation, so size is the one thing that differs.
SIMONW_SIBLINGS = [
    ("gpt-4o", "gpt-4o-mini"),
    ("o1-preview", "o1-mini"),
    ("claude-3-opus-20240229", "claude-3-haiku-20240307"),
    ("gemini-1.5-pro-001", "gemini-1.5-flash-001"),
    ("gemini-1.5-pro-002", "gemini-1.5-flash-002"),
    ("gemini-1.5-flash-002", "gemini-1.5-flash-8b-001"),
    ("cerebras-llama3.1-70b", "cerebras-llama3.1-8b"),
    ("us.amazon.nova-pro-v1-0", "us.amazon.nova-lite-v1-0"),
    ("us.amazon.nova-lite-v1-0", "us.amazon.nova-micro-v1-0"),
]
RMOHID_SIBLINGS = [  # display names from models.csv
    ("Claude Opus 4.6", "Claude Sonnet 4.6"),
    ("Claude Opus 4.5", "Claude Haiku 4.5"),
    ("GPT-5", "GPT-5 Mini"),
    ("GPT-4.1", "GPT-4.1 Mini"),
    ("Gemini 3 Pro", "Gemini 3 Flash"),
    ("Gemini 2.5 Pro", "Gemini 2.5 Flash"),
    ("Grok 3", "Grok 3 Mini"),
]
QWEN_CATEGORY = "Qwen -- Full to Small"

Vote = tuple[Path, Path, str]  # (a, b, winner) with absolute paths


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def self_score_votes(corpus: Path) -> list[Vote]:
    """Every pair of rounds within one jlebensold agent; the higher self-score wins."""
    root = corpus / JLEBENSOLD
    by_agent: dict[str, list[dict[str, str]]] = {}
    for row in _rows(root / "extracted" / "frames.csv"):
        by_agent.setdefault(row["agent_key"], []).append(row)
    votes = []
    for rows in by_agent.values():
        for first, second in itertools.combinations(rows, 2):
            a, b = float(first["self_score"]), float(second["self_score"])
            votes.append((root / first["path"], root / second["path"], "a" if a > b else "b" if b > a else "tie"))
    return votes


def _iterations(corpus: Path) -> dict[str, list[tuple[int, Path]]]:
    """(iteration, file) per youngbrioche run, first to last; a run without numbers is a single file."""
    root = corpus / YOUNGBRIOCHE
    runs: dict[str, list[tuple[int, Path]]] = {}
    for row in _rows(root / "iterations.csv"):
        runs.setdefault(row["run"], []).append((int(row["iteration"] or 1), root / row["path"]))
    return {run: sorted(files) for run, files in runs.items()}


def iteration_votes(corpus: Path) -> list[Vote]:
    """Within each youngbrioche run, every later iteration beats every earlier one."""
    return [
        (later, earlier, "a")
        for files in _iterations(corpus).values()
        for (_, earlier), (_, later) in itertools.combinations(files, 2)
    ]


def iteration_ranking(corpus: Path) -> list[tuple[Path, int, str]]:
    """(file, rank with 1 = the run's last iteration, run)."""
    return [
        (path, len(files) - position, run)
        for run, files in _iterations(corpus).items()
        for position, (_, path) in enumerate(files)
    ]


def sibling_votes(corpus: Path) -> list[Vote]:
    """The larger of two same-generation models wins (simonw and Rmohid)."""
    simonw = corpus / SIMONW
    rmohid = corpus / RMOHID
    by_name = {row["name"]: rmohid / row["path"] for row in _rows(rmohid / "extracted" / "models.csv")}
    votes = [(simonw / f"{big}.svg", simonw / f"{small}.svg", "a") for big, small in SIMONW_SIBLINGS]
    return votes + [(by_name[big], by_name[small], "a") for big, small in RMOHID_SIBLINGS]


def qwen_series(corpus: Path) -> list[Path]:
    """Rmohid's Qwen models, best (largest) first, in the order of the upstream page."""
    root = corpus / RMOHID
    return [root / row["path"] for row in _rows(root / "extracted" / "models.csv") if row["category"] == QWEN_CATEGORY]


def _relative(path: Path, out: Path) -> str:
    return os.path.relpath(path, out)


def write_votes(path: Path, votes: Iterable[Vote]) -> int:
    rows = [(_relative(a, path.parent), _relative(b, path.parent), winner) for a, b, winner in votes]
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["a", "b", "winner"])
        writer.writerows(rows)
    return len(rows)


def write_ranking(path: Path, ranking: Iterable[tuple[Path, int, str]]) -> int:
    rows = [(_relative(file, path.parent), rank, group) for file, rank, group in ranking]
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(["path", "rank", "group"])
        writer.writerows(rows)
    return len(rows)


def write_list(path: Path, files: Sequence[Path]) -> int:
    path.write_text("".join(_relative(f, path.parent) + "\n" for f in files), encoding="utf-8")
    return len(files)


def write_all(corpus: Path, out: Path) -> list[tuple[Path, int, str]]:
    """Write every label file into ``out``; returns (file, entries, what the labels are)."""
    out.mkdir(parents=True, exist_ok=True)
    votes = self_score_votes(corpus)
    return [
        (out / "jlebensold_self_scores.csv", write_votes(out / "jlebensold_self_scores.csv", votes),
         f"votes, {sum(w == 'tie' for _, _, w in votes)} ties: higher self-score (0-40) wins, within one agent's rounds"),
        (out / "youngbrioche_iterations.csv", write_votes(out / "youngbrioche_iterations.csv", iteration_votes(corpus)),
         "votes: later iteration beats earlier, within one agentic run"),
        (out / "youngbrioche_iteration_ranking.csv", write_ranking(out / "youngbrioche_iteration_ranking.csv", iteration_ranking(corpus)),
         "ranking: last iteration first, one group per run"),
        (out / "model_siblings.csv", write_votes(out / "model_siblings.csv", sibling_votes(corpus)),
         "votes: the larger of two same-generation models wins (simonw, Rmohid)"),
        (out / "qwen_size_series.txt", write_list(out / "qwen_size_series.txt", qwen_series(corpus)),
         "ranking: Rmohid's Qwen series, largest first"),
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the label files")
    parser.add_argument("--corpus", type=Path, default=Path(os.environ.get("SVGSCORE_CORPUS", DEFAULT_CORPUS)))
    args = parser.parse_args(argv)
    if not (args.corpus / "README.md").is_file():
        print(f"corpus not found at {args.corpus} (set --corpus or SVGSCORE_CORPUS)", file=sys.stderr)
        return 1
    print(f"Proxy labels from {args.corpus}: the corpus has no human ratings; these come from self-scores, "
          "iteration order and model size.")  # fmt: skip
    for path, count, what in write_all(args.corpus, args.out):
        print(f"  {path}: {count} {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
