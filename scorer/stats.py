"""Statistics more than one tool needs: pure functions over plain numbers (numpy only).

Bradley–Terry strengths are fitted by ``svgscore validate`` (people's votes) and by the model
judge's pairwise tournament (``compare --pairwise``); they live here, below both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

Winner = Literal["a", "b", "tie"]


def win_matrix(n_items: int, comparisons: Sequence[tuple[int, int, Winner]]) -> np.ndarray:
    """(n, n): how often item i beat item j; a tie counts half a win to each side."""
    wins = np.zeros((n_items, n_items))
    for i, j, winner in comparisons:
        share = {"a": 1.0, "b": 0.0, "tie": 0.5}[winner]
        wins[i, j] += share
        wins[j, i] += 1.0 - share
    return wins


def bradley_terry(
    n_items: int,
    comparisons: Sequence[tuple[int, int, Winner]],
    *,
    max_iter: int = 10_000,
    tol: float = 1e-10,
) -> np.ndarray:
    """Log-strengths of a Bradley–Terry model fitted by Hunter's MM algorithm.

    ``comparisons`` are (index of a, index of b, winner); a tie counts half a win to each side.
    Every item also plays one tied game against a phantom of strength 1: without it an item
    that never lost (or never won) has an infinite MLE, and disconnected parts of the vote
    graph would have no common scale. Items with no votes come out at 0 (the phantom's level).
    """
    return bradley_terry_wins(win_matrix(n_items, comparisons), max_iter=max_iter, tol=tol)


def bradley_terry_wins(wins: np.ndarray, *, max_iter: int = 10_000, tol: float = 1e-10) -> np.ndarray:
    """:func:`bradley_terry` from win matrices ``wins[..., i, j]``, every leading index fitted at
    once (a bootstrap's replicates in one pass); returns log-strengths of shape ``wins.shape[:-1]``."""
    n_items = wins.shape[-1]
    size = n_items + 1  # the phantom is the last index
    full = np.zeros((*wins.shape[:-2], size, size))
    full[..., :n_items, :n_items] = wins
    full[..., :n_items, n_items] += 0.5
    full[..., n_items, :n_items] += 0.5
    games = full + np.swapaxes(full, -1, -2)
    total_wins = full.sum(axis=-1)
    strength = np.ones((*wins.shape[:-2], size))
    for _ in range(max_iter):
        denominators = (games / (strength[..., :, None] + strength[..., None, :])).sum(axis=-1)
        updated = total_wins / denominators
        updated /= updated[..., n_items : n_items + 1]  # pin the phantom at 1: the scale is otherwise free
        converged = np.max(np.abs(np.log(updated) - np.log(strength))) < tol
        strength = updated
        if converged:
            break
    return np.log(strength[..., :n_items])
