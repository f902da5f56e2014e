"""Leaderboards with honest uncertainty: result records → per-model means, intervals and pairs.

The question is "does model X draw better than model Y?", asked of a few prompts and a few
samples each. So every number comes with a bootstrap interval that resamples *prompts* and,
within each prompt, *samples* (a two-stage cluster bootstrap): a model that got lucky on one
prompt does not look better than it is. A model's score is the mean over its prompts of the
mean over that prompt's samples, so an extra sample on one prompt does not tilt the score.

Error rows (the file did not parse or render) count as score 0 by default: a model that
cannot produce a drawing has failed that attempt. ``errors="exclude"`` leaves them out of
the means instead; either way the count of errors is reported per model.

Deterministic: the random stream of each model (and pair) is seeded from ``seed`` and the
model names alone, so adding a third model leaves the first two's intervals unchanged.
"""

from __future__ import annotations

import itertools
import json
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import UsageError
from ..inputs import read_manifest_rows
from ..record import Provenance, ScoreResult, provenance_differences

ErrorPolicy = Literal["zero", "exclude"]
ERROR_POLICIES: tuple[ErrorPolicy, ...] = ("zero", "exclude")
PATH_GROUPINGS = ("dir", "stem", "results")  # ways to name a model from where a record came from
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0
_MIN_SAMPLES = 2  # per side: one sample has no spread, so an interval on it would be a lie
_FEW_SAMPLES = 10  # below this the percentile bootstrap is known to under-cover; the output says so


@dataclass(frozen=True)
class Sample:
    """One scored drawing, as the leaderboard sees it."""

    model: str
    prompt: str
    score: float | None  # None: an error row (or nothing could be measured)
    components: Mapping[str, float | None]
    error: str | None = None  # the error code of an error row


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def includes(self, value: float) -> bool:
        return self.low <= value <= self.high


@dataclass(frozen=True)
class ModelSummary:
    model: str
    n: int  # samples counted in the mean
    errors: int  # error rows among this model's samples (counted as 0, or excluded)
    error_codes: dict[str, int]  # how many of each error code, most frequent first
    prompts: int
    mean: float | None  # None only when every sample was an excluded error
    interval: Interval | None  # 95 %; None with fewer than two samples
    components: dict[str, float | None]  # mean value in [0, 1] where the component counted


@dataclass(frozen=True)
class PairComparison:
    """``a`` is ranked above ``b`` overall; the figures use only the prompts both were given."""

    a: str
    b: str
    shared_prompts: int
    difference: float | None  # mean(a) − mean(b) in score points
    difference_interval: Interval | None
    win_probability: float | None  # P(a random sample of a beats one of b on the same prompt), ties half
    win_interval: Interval | None
    separable: bool  # the difference's interval excludes 0
    verdict: str  # one plain sentence


@dataclass(frozen=True)
class Leaderboard:
    models: list[ModelSummary]  # best first
    pairs: list[PairComparison]  # every pair, in rank order
    components: list[str]
    errors: ErrorPolicy
    resamples: int
    seed: int
    notes: list[str] = field(default_factory=list)
    provenance: list[Provenance] = field(default_factory=list)  # what made the scores: one judge, unless allowed otherwise

    def adjacent_pairs(self) -> list[PairComparison]:
        """Each model against the next one down: whether the ranking's every step is real."""
        ranked = [m.model for m in self.models]
        steps = set(itertools.pairwise(ranked))
        return [p for p in self.pairs if (p.a, p.b) in steps]

    def sentences(self) -> list[str]:
        """The plain-language reading: a verdict per step of the ranking that can be judged, one
        line for the steps that cannot (too few samples), then how the numbers were made."""
        adjacent = self.adjacent_pairs()
        lines = [p.verdict for p in adjacent if p.difference_interval is not None or p.shared_prompts == 0]
        unjudged = [p for p in adjacent if p.difference_interval is None and p.shared_prompts > 0]
        if len(unjudged) == 1:
            lines.append(unjudged[0].verdict)
        elif unjudged:
            single = sorted(m.model for m in self.models if m.n < _MIN_SAMPLES)
            who = (
                "every model has a single sample"
                if len(single) == len(self.models)
                else f"{', '.join(single) if len(single) <= 6 else f'{len(single)} models'} {'has' if len(single) == 1 else 'have'} a single sample"
            )
            lines.append(
                f"Too few samples to judge {len(unjudged)} of the {len(adjacent)} steps of this ranking: {who}, "
                "and a single drawing says nothing about how a model draws in general; score more samples."
            )
        policy = "count as score 0" if self.errors == "zero" else "are left out of the means"
        lines.append(
            f"Error rows {policy}. Intervals: 95%, two-stage bootstrap over prompts and samples "
            f"({self.resamples} resamples, seed {self.seed})."
        )
        return lines + self.notes

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- reading ---------------------------------------------------------------------------------


def read_results(path: Path) -> list[ScoreResult]:
    """Records from a results file: JSONL (``score -o x.jsonl``) or a JSON array (``--format json``),
    of record version 1 or 2."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read results {path}: {exc.strerror}") from None
    if text.lstrip().startswith("["):
        try:
            return [_record(data, f"results {path} item {number}") for number, data in enumerate(json.loads(text), start=1)]
        except json.JSONDecodeError as exc:
            raise UsageError(f"results {path}: not JSON ({exc.msg})") from None
    records = []
    lines = text.splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines) and not text.endswith("\n"):
                break  # a run still being written (or killed): its last line is half a record
            raise UsageError(f"results {path} line {number}: not JSON ({exc.msg})") from None
        records.append(_record(data, f"results {path} line {number}"))
    return records


def _record(data: Any, where: str) -> ScoreResult:
    try:
        return ScoreResult.parse(data)
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}") from None


def default_grouping(*, manifest: bool, results_files: int) -> str:
    """``model`` from a manifest; without one, each results file is a model when there are
    several, else the folder each SVG sits in (``runs/<model>/<sample>.svg``)."""
    if manifest:
        return "model"
    return "results" if results_files > 1 else "dir"


Labelled = tuple[str, ScoreResult]  # (model, result record)


def collect_records(
    results: Sequence[Path],
    *,
    by: str,
    manifest: Path | None = None,
    allow_judge_change: bool = False,
) -> tuple[list[Labelled], list[str]]:
    """Read results files and name each record's model; returns the labelled records and notes
    on what was left out (and, when allowed, on the judges that differ).

    ``by`` is a manifest column (with ``manifest``), or one of :data:`PATH_GROUPINGS`:
    ``dir`` (the SVG's folder name), ``stem`` (its file name without suffix) or ``results``
    (the results file's name without suffix). A record listed twice (same path, bytes and
    prompt) counts once, the later one winning.

    Scores are only comparable when one judge made them: records whose provenance differs in
    anything that can move scores (:func:`~scorer.record.provenance_differences`) are refused
    with a :class:`UsageError` naming the differences, unless ``allow_judge_change``.
    """
    rows = read_manifest_rows(manifest) if manifest else None
    if by not in PATH_GROUPINGS and rows is None:
        raise UsageError(f"--by {by}: a manifest column needs --manifest (without one: {', '.join(PATH_GROUPINGS)})")
    if rows is not None and by not in PATH_GROUPINGS and not any(by in row for row in rows.values()):
        raise UsageError(f"manifest {manifest} has no column {by!r}")
    latest: dict[tuple[Any, ...], tuple[Path, ScoreResult]] = {}
    for source in results:
        for record in read_results(source):
            latest[record.key] = (source, record)
    notes = _judge_notes(list(latest.values()), allow_judge_change)
    labelled, unlisted = [], 0
    for source, record in latest.values():
        model = _model_of(record, source, by, rows)
        if model is None:
            unlisted += 1
        else:
            labelled.append((model, record))
    if unlisted:
        notes.insert(0, f"{unlisted} records have no {by!r} (not in the manifest, or no file) and were left out")
    if not labelled:
        raise UsageError("no records to compare" + (f" ({notes[0]})" if notes else ""))
    return labelled, notes


def _judge_notes(records: Sequence[tuple[Path, ScoreResult]], allow: bool) -> list[str]:
    """Refuse records made by different judges (say how each differs from the first), or with
    ``allow`` return that as a note for the output."""
    groups: dict[str, list[tuple[Path, ScoreResult]]] = defaultdict(list)
    for source, record in records:
        groups[record.provenance.fingerprint()].append((source, record))
    if len(groups) < 2:
        return []
    first, *others = groups.values()
    lines = []
    for group in others:
        moved = [str(d) for d in provenance_differences(first[0][1].provenance, group[0][1].provenance) if d.moves_scores]
        if moved:
            lines.append(f"{_where(group)} differs from {_where(first)} in: {'; '.join(moved)}")
    if not lines:
        return []  # the same judge on different machines: recorded in the provenance, not a conflict
    judges = f"the results were made by {len(lines) + 1} different judges"
    if allow:
        return [f"Mixed judges, compared anyway (--allow-judge-change): {judges}, so differences may come from the judge. " + " ".join(lines)]
    raise UsageError(
        f"{judges}; scores are only comparable under one judge (same svgscore, config, renderer and models):\n  "
        + "\n  ".join(lines)
        + "\nre-score with one judge, or pass --allow-judge-change to compare anyway"
    )


def _where(group: Sequence[tuple[Path, ScoreResult]]) -> str:
    files = sorted({source.name for source, _ in group})
    return f"{', '.join(files[:3])}{' …' if len(files) > 3 else ''} ({len(group)} records)"


def _model_of(record: ScoreResult, source: Path, by: str, rows: Mapping[str, Mapping[str, str]] | None) -> str | None:
    path = record.path
    if by == "results":
        return source.stem
    if path is None:
        return None  # an in-memory SVG: no file to name a model after
    if by == "dir":
        return Path(path).parent.name or "."
    if by == "stem":
        return Path(path).stem
    assert rows is not None
    # Records hold paths as given to `score` (relative to where it ran: here, by convention).
    row = rows.get(str(Path(path).resolve()))
    return (row.get(by) or None) if row else None


def sample_of(model: str, record: ScoreResult) -> Sample:
    """What the leaderboard needs of a result record."""
    failed = not record.ok or record.score is None
    return Sample(
        model=model,
        prompt=record.prompt,
        score=None if failed else float(record.score),  # type: ignore[arg-type]
        components={name: c.value for name, c in record.components.items()},
        error=(record.error.code if record.error else "no_score") if failed else None,
    )


# -- statistics ------------------------------------------------------------------------------


def leaderboard(
    samples: Iterable[Sample],
    *,
    errors: ErrorPolicy = "zero",
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    notes: Sequence[str] = (),
    provenance: Sequence[Provenance] = (),
) -> Leaderboard:
    """Per-model summaries (best first) and every pairwise comparison; ``notes`` (e.g. what
    :func:`collect_records` left out) and ``provenance`` (what made the scores, e.g.
    :func:`~scorer.record.distinct_provenances` of the records) are carried into the output."""
    if errors not in ERROR_POLICIES:
        raise UsageError(f"errors must be one of {ERROR_POLICIES}, not {errors!r}")
    samples = list(samples)
    by_model: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_model[sample.model].append(sample)
    components = list(dict.fromkeys(name for s in samples for name in s.components))
    scores = {model: _scores_by_prompt(group, errors) for model, group in by_model.items()}
    summaries = [
        _summarize(model, group, scores[model], components, resamples, seed) for model, group in by_model.items()
    ]
    summaries.sort(key=lambda m: (-(m.mean if m.mean is not None else -1.0), m.model))
    pairs = [
        _compare(a.model, b.model, scores[a.model], scores[b.model], resamples, seed)
        for i, a in enumerate(summaries)
        for b in summaries[i + 1 :]
    ]
    notes = list(notes)
    small = [m.model for m in summaries if _MIN_SAMPLES <= m.n < _FEW_SAMPLES]
    if small:
        notes.append(
            f"{len(small)} of {len(summaries)} models have {_MIN_SAMPLES} to {_FEW_SAMPLES - 1} samples: at that size "
            "bootstrap intervals are too narrow, so read their verdicts as optimistic."
        )
    if len({s.prompt for s in samples}) == 1:
        notes.append(
            "One prompt only: the intervals cover sample-to-sample variation on this prompt and say nothing about others."
        )
    return Leaderboard(summaries, pairs, components, errors, resamples, seed, notes, list(provenance))


def _scores_by_prompt(group: Sequence[Sample], errors: ErrorPolicy) -> dict[str, np.ndarray]:
    found: dict[str, list[float]] = defaultdict(list)
    for sample in group:
        if sample.score is not None:
            found[sample.prompt].append(sample.score)
        elif errors == "zero":
            found[sample.prompt].append(0.0)
    return {prompt: np.asarray(values) for prompt, values in sorted(found.items())}


def _rng(seed: int, *names: str) -> np.random.Generator:
    return np.random.default_rng([seed, *(zlib.crc32(name.encode("utf-8")) for name in names)])


def _resample_counts(n: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n): how often each of n samples is drawn in each bootstrap replicate."""
    return rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)


def _over_prompts(per_prompt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Second stage: ``per_prompt`` is (stats, prompts, resamples) of within-prompt replicates;
    each replicate draws the prompts with replacement and averages. Returns (stats, resamples)."""
    _, prompts, resamples = per_prompt.shape
    picks = rng.integers(0, prompts, size=(resamples, prompts))
    return per_prompt[:, picks, np.arange(resamples)[:, None]].mean(axis=2)


def _interval(replicates: np.ndarray) -> Interval:
    low, high = np.percentile(replicates, [2.5, 97.5])
    return Interval(round(float(low), 4), round(float(high), 4))


def _summarize(
    model: str,
    group: Sequence[Sample],
    scores: Mapping[str, np.ndarray],
    components: Sequence[str],
    resamples: int,
    seed: int,
) -> ModelSummary:
    n = sum(len(v) for v in scores.values())
    mean = float(np.mean([v.mean() for v in scores.values()])) if n else None
    interval = None
    if n >= _MIN_SAMPLES:
        rng = _rng(seed, model)
        per_prompt = np.stack([_resample_counts(len(v), resamples, rng) @ v / len(v) for v in scores.values()])
        interval = _interval(_over_prompts(per_prompt[None], rng)[0])
    component_means = {}
    for name in components:
        values = [s.components[name] for s in group if s.score is not None and s.components.get(name) is not None]
        component_means[name] = round(float(np.mean(values)), 4) if values else None
    return ModelSummary(
        model=model,
        n=n,
        errors=sum(s.score is None for s in group),
        error_codes=dict(Counter(s.error for s in group if s.error is not None).most_common()),
        prompts=len({s.prompt for s in group}),
        mean=None if mean is None else round(mean, 4),
        interval=interval,
        components=component_means,
    )


def _compare(
    a: str, b: str, scores_a: Mapping[str, np.ndarray], scores_b: Mapping[str, np.ndarray], resamples: int, seed: int
) -> PairComparison:
    shared = [p for p in scores_a if p in scores_b]
    if not shared:
        return PairComparison(a, b, 0, None, None, None, None, False, f"{a} and {b} were never given the same prompt: not compared.")
    xs, ys = [scores_a[p] for p in shared], [scores_b[p] for p in shared]
    difference = float(np.mean([x.mean() - y.mean() for x, y in zip(xs, ys, strict=False)]))
    wins = [(x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :]) for x, y in zip(xs, ys, strict=False)]
    win = float(np.mean([w.mean() for w in wins]))
    na, nb = sum(map(len, xs)), sum(map(len, ys))
    if min(na, nb) < _MIN_SAMPLES:
        verdict = (
            f"Too few samples to compare {a} and {b} ({na} and {nb} on shared prompts): "
            f"a single drawing says nothing about how a model draws in general; score more samples."
        )
        return PairComparison(a, b, len(shared), round(difference, 4), None, round(win, 4), None, False, verdict)
    rng = _rng(seed, a, b)
    per_prompt = np.empty((2, len(shared), resamples))
    for k, (x, y, w) in enumerate(zip(xs, ys, wins, strict=False)):
        ca, cb = _resample_counts(len(x), resamples, rng), _resample_counts(len(y), resamples, rng)
        per_prompt[0, k] = ca @ x / len(x) - cb @ y / len(y)
        # The win rate among the resampled pairs, without materializing them: counts · W · counts.
        per_prompt[1, k] = np.einsum("ri,ij,rj->r", ca, w, cb) / (len(x) * len(y))
    replicates = _over_prompts(per_prompt, rng)
    diff_ci, win_ci = _interval(replicates[0]), _interval(replicates[1])
    separable = not diff_ci.includes(0.0)
    if separable:
        # Say it the way round it is: the better model first, with a positive difference.
        sign = 1.0 if difference > 0 else -1.0
        better, worse, p = (a, b, win) if sign > 0 else (b, a, 1 - win)
        low, high = sorted((sign * diff_ci.low, sign * diff_ci.high))
        verdict = (
            f"{better} draws better than {worse}: {sign * difference:+.2f} points "
            f"(95% CI {low:+.2f} to {high:+.2f}), P({better} > {worse}) = {p:.2f}."
        )
    else:
        verdict = (
            f"The data cannot separate {a} and {b}: {a} − {b} = {difference:+.2f} points "
            f"(95% CI {diff_ci.low:+.2f} to {diff_ci.high:+.2f}), an interval that includes 0."
        )
    return PairComparison(a, b, len(shared), round(difference, 4), diff_ci, round(win, 4), win_ci, separable, verdict)


# -- output ----------------------------------------------------------------------------------


def write_table(board: Leaderboard, stream: Any, *, all_pairs: bool = False) -> None:
    """The leaderboard, the pairs (adjacent ranks, or all) and a sentence per adjacent pair, via rich."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Leaderboard", title_justify="left", pad_edge=False)
    for column in ("#", "model", "n", "errors", "prompts", "mean", "95% CI"):
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)
    for name in board.components:
        table.add_column(name, justify="right")
    for rank, m in enumerate(board.models, start=1):
        table.add_row(
            str(rank), m.model, str(m.n), str(m.errors), str(m.prompts), _num(m.mean, ".1f"), _ci(m.interval, ".1f"),
            *(_num(m.components.get(name), ".2f") for name in board.components),
        )  # fmt: skip
    pairs = board.pairs if all_pairs else board.adjacent_pairs()
    shown = Table(title="Pairs" + ("" if all_pairs else " (adjacent ranks; --all-pairs for every pair)"), title_justify="left", pad_edge=False)
    for column in ("A", "B", "prompts", "A − B", "95% CI", "P(A > B)", "95% CI", "verdict"):
        shown.add_column(column, justify="left" if column in ("A", "B", "verdict") else "right", no_wrap=True)
    for p in pairs:
        verdict = "separable" if p.separable else "too few" if p.difference_interval is None else "cannot separate"
        shown.add_row(
            p.a, p.b, str(p.shared_prompts), _num(p.difference, "+.2f"), _ci(p.difference_interval, "+.2f"),
            _num(p.win_probability, ".2f"), _ci(p.win_interval, ".2f"), verdict,
        )  # fmt: skip
    interactive = stream.isatty()
    console = Console(file=stream, width=None if interactive else 1000, force_terminal=interactive, highlight=False)
    console.print(table)
    if pairs:
        console.print(shown)
    for line in board.sentences():
        console.print(line, soft_wrap=True)
    for provenance in board.provenance:
        console.print(f"Scored by: {provenance.summary()}", soft_wrap=True, markup=False)


def _num(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _ci(interval: Interval | None, spec: str) -> str:
    return "—" if interval is None else f"{interval.low:{spec}} – {interval.high:{spec}}"
