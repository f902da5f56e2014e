"""The CI regression gate: today's results against a baseline run, per file, per model and on the mean.

Files are matched by path as recorded (normalized, never resolved: a baseline made in another
checkout still matches), not by content, since the point is to judge *changed* drawings.
Error rows count as score 0, so a file that stops rendering is a drop of its whole score.
One threshold serves the mean, each model and each file unless files get their own, looser
one (``max_file_drop``): single drawings are noisier than means, and with equal thresholds a
mean can never fail without some file failing too.
Files only in one run are listed but never fail the gate (a generator may add or retire
outputs); a run sharing *no* file with a non-empty baseline fails, since it checked nothing.

A drop only means the drawings got worse if the same judge scored both runs. When the records'
provenance differs in anything that can move scores (a renderer or cairo upgrade, another
checkpoint or precision, another config, another svgscore), the gate is *refused*: it lists
what differs and does not judge the drawings, unless ``allow_judge_change`` (then it judges
them and says the judge changed).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..inputs import read_manifest_rows
from ..record import Difference, Provenance, ScoreResult, distinct_provenances, provenance_differences


@dataclass(frozen=True)
class Change:
    """A file's, a model's, or the mean's score in the baseline and now."""

    name: str
    baseline: float
    current: float
    note: str = ""  # e.g. the error code a file now fails with

    @property
    def delta(self) -> float:
        return self.current - self.baseline

    def line(self) -> str:
        return f"{self.name}: {self.baseline:.1f} → {self.current:.1f} ({self.delta:+.1f}){f'  [{self.note}]' if self.note else ''}"


@dataclass(frozen=True)
class GateReport:
    max_drop: float  # for the mean and each model
    max_file_drop: float
    compared: int  # files in both runs
    mean: Change | None  # over the files in both runs
    files: list[Change]  # files that dropped by more than max_drop, worst first
    models: list[Change]  # models whose mean dropped by more than max_drop, worst first
    new: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    judge_changes: list[Difference] = field(default_factory=list)  # baseline → now, those that can move scores first
    allow_judge_change: bool = False

    @property
    def refused(self) -> bool:
        """The judge changed in a way that can move scores, and that was not allowed: nothing was judged."""
        return not self.allow_judge_change and any(d.moves_scores for d in self.judge_changes)

    @property
    def failed(self) -> bool:
        return bool(self.files or self.models or self.mean_dropped or self.compared == 0)

    @property
    def mean_dropped(self) -> bool:
        return self.mean is not None and -self.mean.delta > self.max_drop

    def lines(self) -> list[str]:
        """What CI prints: the verdict first, then what dropped, then what was not compared."""
        moved = [f"    {d}" for d in self.judge_changes if d.moves_scores]
        unmoved = [f"    {d}" for d in self.judge_changes if not d.moves_scores]
        if self.refused:
            return [
                "regression gate: REFUSED, the baseline was made by a different judge, so a change in score would not be the drawings' doing:",
                *moved,
                *(["  also differs (does not move scores):", *unmoved] if unmoved else []),
                "  make a new baseline with this judge (this run's records were written), or pass --allow-judge-change to gate anyway",
            ]
        verdict = "FAILED" if self.failed else "passed"
        limits = f"{self.max_drop:g} points" + (f", {self.max_file_drop:g} per file" if self.max_file_drop != self.max_drop else "")
        out = [f"regression gate (max drop {limits}): {verdict}"]
        if moved:
            out += ["  the judge changed since the baseline (gated anyway: --allow-judge-change); differences may come from it:", *moved]
        if unmoved:
            out += ["  made elsewhere than the baseline (does not move scores):", *unmoved]
        if self.mean is None:
            out.append("  no file in common with the baseline: nothing was compared (same paths, scored from the same folder?)")
        else:
            flag = "  dropped beyond the threshold" if self.mean_dropped else ""
            out.append(f"  {self.mean.line()}{flag}")
        if self.models:
            out.append(f"  {_count(len(self.models), 'model')} dropped by more than {self.max_drop:g} points:")
            out.extend(f"    {change.line()}" for change in self.models)
        if self.files:
            out.append(f"  {len(self.files)} of {_count(self.compared, 'file')} dropped by more than {self.max_file_drop:g} points:")
            out.extend(f"    {change.line()}" for change in self.files)
        for label, paths in (("new (not in the baseline)", self.new), ("missing (in the baseline, not scored now)", self.missing)):
            if paths:
                out.append(f"  {_count(len(paths), 'file')} {label}, not gated: {', '.join(paths[:10])}{' …' if len(paths) > 10 else ''}")
        return out


def check_regression(
    baseline: Iterable[ScoreResult],
    current: Iterable[ScoreResult],
    *,
    max_drop: float,
    max_file_drop: float | None = None,
    models: Mapping[str, str] | None = None,
    allow_judge_change: bool = False,
) -> GateReport:
    """Compare two runs' records. ``models`` maps resolved paths of the current run's files to
    their model (:func:`manifest_models`), for per-model means; without it only files and the
    mean are gated. ``max_file_drop`` defaults to ``max_drop``. See the module's note on a
    changed judge for ``allow_judge_change``."""
    file_limit = max_drop if max_file_drop is None else max_file_drop
    before, after = _by_path(baseline), _by_path(current)
    common = [path for path in after if path in before]
    files = [
        Change(path, _score(before[path]), _score(after[path]), _error(after[path]))
        for path in common
        if _score(before[path]) - _score(after[path]) > file_limit
    ]
    files.sort(key=lambda c: (c.delta, c.name))
    mean = None
    if common:
        mean = Change(
            f"mean over {len(common)} files",
            sum(_score(before[p]) for p in common) / len(common),
            sum(_score(after[p]) for p in common) / len(common),
        )
    model_changes = []
    if models:
        grouped: dict[str, list[str]] = defaultdict(list)
        for path in common:
            model = models.get(str(Path(path).resolve()))  # the current files are here: resolving is safe
            if model:
                grouped[model].append(path)
        for model, paths in sorted(grouped.items()):
            change = Change(
                f"{model} (mean over {len(paths)} files)",
                sum(_score(before[p]) for p in paths) / len(paths),
                sum(_score(after[p]) for p in paths) / len(paths),
            )
            if -change.delta > max_drop:
                model_changes.append(change)
        model_changes.sort(key=lambda c: (c.delta, c.name))
    return GateReport(
        max_drop=max_drop,
        max_file_drop=file_limit,
        compared=len(common),
        mean=mean,
        files=files,
        models=model_changes,
        new=sorted(set(after) - set(before)),
        missing=sorted(set(before) - set(after)),
        judge_changes=judge_changes([r.provenance for r in before.values()], [r.provenance for r in after.values()]),
        allow_judge_change=allow_judge_change,
    )


def judge_changes(before: Iterable[Provenance], after: Iterable[Provenance]) -> list[Difference]:
    """What differs between the judges of two runs (each may hold several: a resumed run, a
    cache hit from before an upgrade), each difference once, those that move scores first."""
    found: dict[str, Difference] = {}
    for old in distinct_provenances(before):
        for new in distinct_provenances(after):
            for difference in provenance_differences(old, new):
                found.setdefault(str(difference), difference)
    return sorted(found.values(), key=lambda d: not d.moves_scores)


def manifest_models(manifest: Path) -> dict[str, str]:
    """Resolved file path → model, from a manifest's ``model`` column (empty if it has none)."""
    return {path: row["model"] for path, row in read_manifest_rows(manifest).items() if row.get("model")}


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _by_path(records: Iterable[ScoreResult]) -> dict[str, ScoreResult]:
    # A path listed twice (a resumed run, or two prompts): the later record wins.
    return {os.path.normpath(r.path): r for r in records if r.path}


def _score(record: ScoreResult) -> float:
    return float(record.score) if record.ok and record.score is not None else 0.0


def _error(record: ScoreResult) -> str:
    return f"now {record.error.code}" if record.error else ""
