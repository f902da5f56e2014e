"""Pairwise tournaments: which of two drawings of the same prompt is better, asked of a judge in
both orders; Bradley–Terry ratings of the models with bootstrap intervals; a budget spent where
ratings are closest. Pure: the caller supplies the contestants and a function that asks.

* Each pair is shown both ways round (A then B, B then A) to every judge: a judge that prefers
  whatever comes first cancels out, and how often the order changed the answer is reported.
* Ratings are Bradley–Terry log-strengths of the *models*, fitted on every answer (a tie is
  half a win each); P(X beats Y) = 1 / (1 + exp(r_Y − r_X)).
* Intervals: 95 %, a two-stage bootstrap over prompts and, within each, the pairs judged —
  the same unit of resampling as the leaderboard — refitting the ratings each time. Adjacent
  ranks are separable when the interval of their rating difference excludes 0.
* Budget (``max_pairs``): pairs are judged in rounds, ratings refitted after each. A round
  first gives every pair of models that has not met a pair, then slot by slot the model pair
  whose next answer says most: closest ratings (p(1 − p), largest when even) discounted by
  how often they met, each time on the prompt that pair was compared on least.
* A contestant with no render (an error row) loses to one with, without a call; two without
  are a tie.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..stats import Winner, bradley_terry, bradley_terry_wins, win_matrix

DEFAULT_RESAMPLES = 1000
NO_RENDER = "(no render)"  # the "judge" of pairs decided without a call


@dataclass(frozen=True)
class Contestant:
    model: str
    prompt: str
    path: str
    rendered: bool  # False: an error row, nothing to show the judge


@dataclass(frozen=True)
class Verdict:
    """One judge's answers (one sample) on a pair, both orders, in the pair's terms: ``"a"`` is
    the pair's first contestant. None: that order got no usable answer."""

    judge: str
    forward: Winner | None  # the first contestant shown as A
    reverse: Winner | None  # the first contestant shown as B, mapped back

    @property
    def flipped(self) -> bool | None:
        """Whether the order changed the answer (None unless both orders answered)."""
        if self.forward is None or self.reverse is None:
            return None
        return self.forward != self.reverse


@dataclass(frozen=True)
class Judged:
    a: int  # contestant indices
    b: int
    verdicts: tuple[Verdict, ...]

    def answers(self, judge: str | None = None) -> list[Winner]:
        return [w for v in self.verdicts if judge is None or v.judge == judge for w in (v.forward, v.reverse) if w is not None]

    def winner(self, judge: str | None = None) -> Winner | None:
        """The majority of the answers (both orders, every judge and sample); None with no answer."""
        counts = Counter(self.answers(judge))
        if not counts:
            return None
        return "a" if counts["a"] > counts["b"] else "b" if counts["b"] > counts["a"] else "tie"


Ask = Callable[[Sequence[tuple[int, int]]], list[tuple[Verdict, ...]]]


@dataclass(frozen=True)
class Rating:
    model: str
    rating: float
    interval: tuple[float, float] | None
    pairs: int  # pairs of this model's drawings judged
    wins: float  # answers won (ties half)
    answers: int


@dataclass(frozen=True)
class Separation:
    a: str  # ranked above b
    b: str
    difference: float
    interval: tuple[float, float] | None
    p_a_beats_b: float
    separable: bool
    verdict: str


@dataclass
class Tournament:
    ratings: list[Rating]  # best first
    steps: list[Separation]  # each model against the next one down
    judged: list[Judged]
    candidates: int  # pairs that could have been judged
    flips: int  # (pair, judge, sample) whose two orders disagreed
    both_orders: int  # (pair, judge, sample) answered in both orders
    first_shown_wins: int  # decided answers won by the drawing shown first
    decided: int
    agreement: dict[str, float | None] = field(default_factory=dict)  # "j1 / j2" → share of pairs they decide alike
    resamples: int = DEFAULT_RESAMPLES
    seed: int = 0
    notes: list[str] = field(default_factory=list)

    def sentences(self) -> list[str]:
        """The same reading as the leaderboard's: a verdict per step of the ranking, then how it was made."""
        lines = [step.verdict for step in self.steps]
        if self.both_orders:
            share = self.flips / self.both_orders
            first = f"; the drawing shown first won {self.first_shown_wins} of {self.decided} decided answers ({self.first_shown_wins / self.decided:.0%})" if self.decided else ""
            lines.append(f"Order changed the judge's answer in {self.flips} of {self.both_orders} pair judgements ({share:.0%}){first}.")
        for names, value in self.agreement.items():
            lines.append(f"Judges {names} decided {'—' if value is None else f'{value:.0%}'} of the pairs alike.")
        lines.append(
            f"{len(self.judged)} of {self.candidates} pairs judged, each in both orders. Ratings: Bradley–Terry log-strengths; "
            f"intervals: 95%, two-stage bootstrap over prompts and pairs ({self.resamples} resamples, seed {self.seed})."
        )
        return lines + self.notes

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["judged"] = [{"a": j.a, "b": j.b, "winner": j.winner(), "verdicts": [asdict(v) for v in j.verdicts]} for j in self.judged]
        return data


def candidate_pairs(contestants: Sequence[Contestant]) -> list[tuple[int, int]]:
    """Every pair of drawings of the same prompt by different models, in a fixed order."""
    by_prompt: dict[str, list[int]] = defaultdict(list)
    for index, c in enumerate(contestants):
        by_prompt[c.prompt].append(index)
    pairs = []
    for prompt in sorted(by_prompt):
        for i, j in itertools.combinations(by_prompt[prompt], 2):
            if contestants[i].model != contestants[j].model:
                first, second = sorted((i, j), key=lambda k: (contestants[k].model, contestants[k].path))
                pairs.append((first, second))
    return pairs


def run(
    contestants: Sequence[Contestant],
    ask: Ask,
    *,
    max_pairs: int | None = None,
    round_size: int = 8,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Tournament:
    """Judge pairs (all, or ``max_pairs`` chosen round by round), then rate the models."""
    models = sorted({c.model for c in contestants})
    index = {m: k for k, m in enumerate(models)}
    remaining = candidate_pairs(contestants)
    total = len(remaining)
    budget = total if max_pairs is None else min(max_pairs, total)
    judged: list[Judged] = []
    while len(judged) < budget:
        size = budget - len(judged) if max_pairs is None else min(round_size, budget - len(judged))
        ratings = _fit(models, index, contestants, judged)
        chosen = _schedule(remaining, contestants, judged, ratings, index, size)
        remaining = [p for p in remaining if p not in set(chosen)]
        to_ask = [p for p in chosen if contestants[p[0]].rendered and contestants[p[1]].rendered]
        asked = dict(zip(to_ask, ask(to_ask), strict=True)) if to_ask else {}
        for a, b in chosen:
            verdicts = asked.get((a, b)) or (_without_call(contestants[a], contestants[b]),)
            judged.append(Judged(a, b, verdicts))
    return _rate(models, index, contestants, judged, total, resamples, seed)


def _without_call(a: Contestant, b: Contestant) -> Verdict:
    winner: Winner = "tie" if a.rendered == b.rendered else "a" if a.rendered else "b"
    return Verdict(NO_RENDER, winner, winner)


def _comparisons(judged: Sequence[Judged], contestants: Sequence[Contestant], index: dict[str, int]) -> list[tuple[int, int, Winner]]:
    return [(index[contestants[j.a].model], index[contestants[j.b].model], w) for j in judged for w in j.answers()]


def _fit(models: Sequence[str], index: dict[str, int], contestants: Sequence[Contestant], judged: Sequence[Judged], *, tol: float = 1e-10) -> np.ndarray:
    return bradley_terry(len(models), _comparisons(judged, contestants, index), tol=tol)


def _schedule(
    remaining: Sequence[tuple[int, int]],
    contestants: Sequence[Contestant],
    judged: Sequence[Judged],
    ratings: np.ndarray,
    index: dict[str, int],
    size: int,
) -> list[tuple[int, int]]:
    """The next ``size`` pairs: model pairs that have not met first, then those whose ratings
    are closest (fewest meetings breaking ties), each on its least-compared prompt."""
    met: Counter[tuple[str, str]] = Counter()
    prompts_used: Counter[tuple[str, str, str]] = Counter()
    for j in judged:
        models = (contestants[j.a].model, contestants[j.b].model)
        met[models] += 1
        prompts_used[(*models, contestants[j.a].prompt)] += 1
    open_pairs: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for a, b in remaining:
        open_pairs[(contestants[a].model, contestants[b].model)].append((a, b))
    def priority(key: tuple[str, str]) -> tuple[Any, ...]:
        # p(1 − p) is what one more answer tells about a pair of ratings (largest when even);
        # discounted by the meetings so far, so a close pair is not asked about for ever.
        p = 1.0 / (1.0 + math.exp(ratings[index[key[1]]] - ratings[index[key[0]]]))
        return (met[key] > 0, -p * (1 - p) / (1 + met[key]), met[key], key)

    chosen: list[tuple[int, int]] = []
    while len(chosen) < size and any(open_pairs.values()):
        key = min((key for key, pairs in open_pairs.items() if pairs), key=priority)
        pairs = open_pairs[key]
        pick = min(pairs, key=lambda p: (prompts_used[(*key, contestants[p[0]].prompt)], pairs.index(p)))
        pairs.remove(pick)
        chosen.append(pick)
        met[key] += 1
        prompts_used[(*key, contestants[pick[0]].prompt)] += 1
    return chosen


def _rate(
    models: Sequence[str],
    index: dict[str, int],
    contestants: Sequence[Contestant],
    judged: Sequence[Judged],
    candidates: int,
    resamples: int,
    seed: int,
) -> Tournament:
    strengths = _fit(models, index, contestants, judged)
    replicates = _bootstrap(models, index, contestants, judged, resamples, seed)
    pairs: Counter[str] = Counter()
    wins: Counter[str] = Counter()  # answers won, ties half
    answers: Counter[str] = Counter()
    for j in judged:
        a, b = contestants[j.a].model, contestants[j.b].model
        pairs.update((a, b))
        for w in j.answers():
            share = {"a": 1.0, "b": 0.0, "tie": 0.5}[w]
            wins[a] += share  # type: ignore[assignment]
            wins[b] += 1 - share  # type: ignore[assignment]
            answers.update((a, b))
    ranked = sorted(models, key=lambda m: (-strengths[index[m]], m))
    ratings = [
        Rating(
            m, round(float(strengths[index[m]]), 4) + 0.0,  # + 0.0: no "-0.00"
            None if replicates is None else _interval(replicates[:, index[m]]),
            pairs[m], wins[m], answers[m],
        )  # fmt: skip
        for m in ranked
    ]
    steps = [_separation(a, b, strengths, replicates, index) for a, b in itertools.pairwise(ranked)]
    both = [v for j in judged for v in j.verdicts if v.judge != NO_RENDER and v.flipped is not None]
    # Answers in the order shown: forward "a" and reverse "b" (mapped back) mean the first-shown drawing won.
    shown = [(w, first) for j in judged for v in j.verdicts if v.judge != NO_RENDER for w, first in ((v.forward, "a"), (v.reverse, "b")) if w in ("a", "b")]
    judges = sorted({v.judge for j in judged for v in j.verdicts} - {NO_RENDER})
    agreement = {}
    for x, y in itertools.combinations(judges, 2):
        decided = [(j.winner(x), j.winner(y)) for j in judged if j.winner(x) is not None and j.winner(y) is not None]
        agreement[f"{x} / {y}"] = sum(p == q for p, q in decided) / len(decided) if decided else None
    notes = []
    if without := sum(1 for j in judged if j.verdicts and j.verdicts[0].judge == NO_RENDER):
        notes.append(f"{without} pairs had a drawing without a render (an error row): decided without asking the judge.")
    if unanswered := sum(1 for j in judged if j.winner() is None):
        notes.append(f"{unanswered} pairs got no usable answer from any judge (see the judges' failures) and count for nothing.")
    if len({c.prompt for c in contestants}) == 1:
        notes.append("One prompt only: the intervals cover pair-to-pair variation on this prompt and say nothing about others.")
    return Tournament(
        ratings, steps, list(judged), candidates, sum(v.flipped for v in both), len(both),  # type: ignore[misc]
        sum(w == first for w, first in shown), len(shown), agreement, resamples, seed, notes,
    )  # fmt: skip


def _bootstrap(
    models: Sequence[str], index: dict[str, int], contestants: Sequence[Contestant], judged: Sequence[Judged], resamples: int, seed: int
) -> np.ndarray | None:
    """(resamples, models) ratings refitted on prompts drawn with replacement, then the pairs
    within each drawn prompt (all replicates fitted in one vectorised pass)."""
    if len(judged) < 2:
        return None
    by_prompt: dict[str, list[int]] = defaultdict(list)
    for k, j in enumerate(judged):
        by_prompt[contestants[j.a].prompt].append(k)
    groups = [by_prompt[p] for p in sorted(by_prompt)]
    # Each judged pair's answers as a win matrix; a replicate's wins are a count-weighted sum.
    each = np.stack([win_matrix(len(models), _comparisons([j], contestants, index)) for j in judged])
    rng = np.random.default_rng([seed, *(zlib.crc32(m.encode()) for m in models)])
    drawn = rng.multinomial(len(groups), np.full(len(groups), 1 / len(groups)), size=resamples)  # (resamples, prompts)
    counts = np.zeros((resamples, len(judged)))
    for g, members in enumerate(groups):
        # A prompt drawn c times contributes c × its size pairs drawn from it: one multinomial.
        counts[:, members] = rng.multinomial(drawn[:, g] * len(members), np.full(len(members), 1 / len(members)))
    return bradley_terry_wins(np.einsum("rk,kij->rij", counts, each), tol=1e-8)


def _interval(values: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(values, [2.5, 97.5])
    return round(float(low), 4), round(float(high), 4)


def _separation(a: str, b: str, strengths: np.ndarray, replicates: np.ndarray | None, index: dict[str, int]) -> Separation:
    difference = float(strengths[index[a]] - strengths[index[b]])
    p = 1.0 / (1.0 + math.exp(-difference))
    if replicates is None:
        verdict = f"Too few pairs judged to compare {a} and {b}: judge more pairs (--max-pairs)."
        return Separation(a, b, round(difference, 4), None, round(p, 4), False, verdict)
    low, high = _interval(replicates[:, index[a]] - replicates[:, index[b]])
    separable = low > 0 or high < 0
    if separable:
        verdict = (
            f"{a} draws better than {b} in the judge's eyes: rating {difference:+.2f} "
            f"(95% CI {low:+.2f} to {high:+.2f}), P({a} > {b}) = {p:.2f}."
        )
    else:
        verdict = (
            f"The data cannot separate {a} and {b}: {a} − {b} = {difference:+.2f} rating "
            f"(95% CI {low:+.2f} to {high:+.2f}), an interval that includes 0."
        )
    return Separation(a, b, round(difference, 4), (low, high), round(p, 4), separable, verdict)
