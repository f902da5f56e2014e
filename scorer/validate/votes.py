"""Reference labels for ``svgscore validate``: pairwise votes and ranked lists, read from files.

* Votes: CSV with a header holding ``a``, ``b``, ``winner`` (``a``, ``b`` or ``tie``) and
  optionally ``prompt``.
* Rankings: CSV with ``path`` and ``rank`` (1 = best; ties allowed), optionally ``group``
  (ranks are only compared within a group) and ``prompt``; or a plain text file listing one
  path per line, best first (blank lines and ``#`` comments ignored).

Paths are relative to the file that names them. Malformed rows are usage errors naming
the row, as for manifests: a label file with a typo should be fixed, not half-read.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import UsageError
from .stats import WINNERS, Winner

LabelKind = Literal["votes", "ranking"]
_VOTE_COLUMNS = {"a", "b", "winner"}
_RANKING_COLUMNS = {"path", "rank"}


@dataclass(frozen=True)
class Vote:
    a: Path
    b: Path
    winner: Winner
    prompt: str | None  # None: the manifest's or the default prompt


@dataclass(frozen=True)
class Ranked:
    path: Path
    rank: float  # 1 = best
    group: str  # ranks are comparable only within a group ("" when the file has none)
    prompt: str | None


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{path} is not UTF-8 text") from None


def _header(text: str) -> set[str]:
    first = next(csv.reader(text.splitlines()[:1]), [])
    return {column.strip() for column in first}


def label_kind(path: Path) -> LabelKind:
    """Votes or a ranking, told apart by the CSV header; a file with neither header is an error."""
    columns = _header(_read_text(path))
    if _VOTE_COLUMNS <= columns:
        return "votes"
    if _RANKING_COLUMNS <= columns:
        return "ranking"
    raise UsageError(
        f"{path}: header has neither a,b,winner (votes) nor path,rank (ranking); "
        "give a plain list of paths, best first, with --ranking"
    )


def read_votes(path: Path) -> list[Vote]:
    text = _read_text(path)
    if not _VOTE_COLUMNS <= _header(text):
        raise UsageError(f"votes file {path} needs a header with columns a,b,winner")
    votes = []
    for number, row in enumerate(csv.DictReader(text.splitlines()), start=2):
        a, b, winner = (str(row.get(k) or "").strip() for k in ("a", "b", "winner"))
        if not a or not b or winner.lower() not in WINNERS:
            raise UsageError(f"votes file {path} line {number}: needs paths a and b and winner a, b or tie")
        votes.append(Vote(path.parent / a, path.parent / b, winner.lower(), (row.get("prompt") or "").strip() or None))  # type: ignore[arg-type]
    return votes


def read_ranking(path: Path) -> list[Ranked]:
    """A ``path,rank`` CSV (detected by its header) or a plain list of paths, best first."""
    text = _read_text(path)
    if not _RANKING_COLUMNS <= _header(text):
        lines = [line.strip() for line in text.splitlines()]
        paths = [line for line in lines if line and not line.startswith("#")]
        return [Ranked(path.parent / p, float(rank), "", None) for rank, p in enumerate(paths, start=1)]
    ranked = []
    for number, row in enumerate(csv.DictReader(text.splitlines()), start=2):
        file = str(row.get("path") or "").strip()
        try:
            rank = float(str(row.get("rank")))
        except ValueError:
            rank = math.nan
        if not file or not math.isfinite(rank):
            raise UsageError(f"ranking file {path} line {number}: needs a path and a numeric rank")
        ranked.append(Ranked(path.parent / file, rank, str(row.get("group") or "").strip(), (row.get("prompt") or "").strip() or None))
    return ranked
