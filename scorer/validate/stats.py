"""Statistics for judging the judge: pairwise agreement, bootstrap intervals, Bradley–Terry
strengths and rank correlations. Pure functions over plain numbers; no files, no scoring.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..stats import Winner, bradley_terry  # noqa: F401  (defined below every tool that fits Bradley–Terry)

WINNERS: tuple[Winner, ...] = ("a", "b", "tie")


@dataclass(frozen=True)
class Agreement:
    """How often a judge picked the side people picked, over the votes it could decide."""

    value: float  # NaN when no vote was decided
    low: float  # bootstrap interval bounds (NaN when no vote was decided)
    high: float
    used: int  # votes the judge decided (and so counted)
    judge_ties: int  # votes where the judge could not pick a side (equal or missing values)


@dataclass(frozen=True)
class Correlation:
    """Rank correlation pooled over groups: the n-weighted mean of the per-group coefficients."""

    spearman: float  # NaN when no group could be compared
    kendall: float  # tau-b, so tied ranks are handled
    n: int  # items in the groups that were compared
    groups: int  # groups that were compared (at least 3 items, neither side constant)


def preference(a: float | None, b: float | None) -> Winner | None:
    """Which side a value pair favours: higher wins; ``"tie"`` when equal; ``None`` when a side is missing."""
    if a is None or b is None:
        return None
    return "a" if a > b else "b" if b > a else "tie"


def bootstrap_ci(hits: Sequence[bool], *, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the hit rate. A fixed seed makes it reproducible.

    Votes are resampled as if independent; votes sharing a file are not, so the interval is
    on the optimistic side when the same files recur in many votes.
    """
    if not hits:
        return math.nan, math.nan
    values = np.asarray(hits, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return float(low), float(high)


def agreement(pairs: Sequence[tuple[Winner, float | None, float | None]], *, seed: int = 0) -> Agreement:
    """Agreement of a judge with non-tie human votes, given (human winner, judge value of a, of b).

    Human ties carry no direction and must be filtered out by the caller; votes the judge
    cannot decide (equal values, or a value missing) are counted as ``judge_ties``, not as misses.
    """
    if any(winner == "tie" for winner, _, _ in pairs):
        raise ValueError("agreement is over non-tie votes; drop human ties first")
    hits = []
    for winner, a, b in pairs:
        judged = preference(a, b)
        if judged in ("a", "b"):
            hits.append(judged == winner)
    low, high = bootstrap_ci(hits, seed=seed)
    value = float(np.mean(hits)) if hits else math.nan
    return Agreement(value=value, low=low, high=high, used=len(hits), judge_ties=len(pairs) - len(hits))


def connected_groups(n_items: int, edges: Sequence[tuple[int, int]]) -> list[int]:
    """A group label per item: items joined by a chain of edges share a label (union-find)."""
    parent = list(range(n_items))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in edges:
        parent[root(i)] = root(j)
    return [root(i) for i in range(n_items)]


def rank_correlation(
    judge: Mapping[Hashable, float],
    reference: Mapping[Hashable, float],
    groups: Mapping[Hashable, Hashable] | None = None,
) -> Correlation:
    """Spearman and Kendall tau-b between two scorings (higher = better) of the same items.

    With ``groups``, items are only compared within their group (a run, a prompt, a connected
    part of the vote graph) and the coefficients are averaged with each group's size as weight:
    a reference that is only meaningful within a group says nothing about order across groups.
    Groups under 3 items, or where either side is constant, are left out.
    """
    common = [key for key in reference if key in judge]
    by_group: dict[Hashable, list[Hashable]] = {}
    for key in common:
        by_group.setdefault(None if groups is None else groups[key], []).append(key)
    rhos, taus, sizes = [], [], []
    for keys in by_group.values():
        x = np.array([judge[k] for k in keys], dtype=float)
        y = np.array([reference[k] for k in keys], dtype=float)
        if len(keys) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        rhos.append(stats.spearmanr(x, y).statistic)
        taus.append(stats.kendalltau(x, y).statistic)
        sizes.append(len(keys))
    if not sizes:
        return Correlation(spearman=math.nan, kendall=math.nan, n=0, groups=0)
    return Correlation(
        spearman=float(np.average(rhos, weights=sizes)),
        kendall=float(np.average(taus, weights=sizes)),
        n=sum(sizes),
        groups=len(sizes),
    )
