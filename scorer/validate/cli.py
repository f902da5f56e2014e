"""``svgscore validate``: how well the judge agrees with reference labels (votes, rankings).

Every labelled file is scored once per config (through the result cache); the statistics
come from :mod:`scorer.validate.stats`, the label formats from :mod:`scorer.validate.votes`.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from ..api import Scorer
from ..cliopts import scorer_kwargs, scorer_options
from ..combine import combine
from ..config import DEFAULT_PROMPT
from ..errors import UsageError
from ..inputs import ScoreItem, read_manifest
from ..record import ScoreResult
from .stats import (
    Agreement,
    Winner,
    agreement,
    bradley_terry,
    connected_groups,
    rank_correlation,
)
from .votes import label_kind, read_ranking, read_votes

ItemKey = tuple[str, str]  # (resolved path, prompt): what gets scored
Results = Mapping[ItemKey, ScoreResult]  # files that do not exist have no entry
KeyedVote = tuple[ItemKey, ItemKey, Winner]
KeyedRank = tuple[ItemKey, float, str]  # (file, rank with 1 = best, group)
SKIP_REASONS = ("missing_file", "error_row", "tie", "judge_tie")


@dataclasses.dataclass(frozen=True)
class LabelSet:
    """One label file, its entries resolved to the items they name."""

    path: Path
    votes: list[KeyedVote] | None = None
    ranking: list[KeyedRank] | None = None

    @property
    def keys(self) -> set[ItemKey]:
        if self.votes is not None:
            return {key for a, b, _ in self.votes for key in (a, b)}
        return {key for key, _, _ in self.ranking or []}


def load_labels(
    votes_or_rankings: Sequence[Path], rankings: Sequence[Path], prompts: Mapping[str, str], default_prompt: str
) -> list[LabelSet]:
    """Read label files: positional ones by their header (votes or ranking), ``--ranking`` ones as rankings.

    A file's prompt is its row's ``prompt``, else the manifest's, else ``default_prompt``.
    """

    def key(path: Path, prompt: str | None) -> ItemKey:
        resolved = str(path.resolve())
        return resolved, prompt or prompts.get(resolved, default_prompt)

    def ranking(path: Path) -> LabelSet:
        return LabelSet(path, ranking=[(key(r.path, r.prompt), r.rank, r.group) for r in read_ranking(path)])

    def votes(path: Path) -> LabelSet:
        return LabelSet(path, votes=[(key(v.a, v.prompt), key(v.b, v.prompt), v.winner) for v in read_votes(path)])

    found = [ranking(p) if label_kind(p) == "ranking" else votes(p) for p in votes_or_rankings]
    return found + [ranking(p) for p in rankings]


# -- figures (pure: labels + results in, plain dicts out) -------------------------------------


def _agreement_dict(found: Agreement) -> dict[str, Any]:
    return {"value": found.value, "ci95": [found.low, found.high], "decided": found.used}


def _value(result: ScoreResult, name: str) -> float | None:
    component = result.components.get(name)
    return None if component is None else component.value


def score_without(result: ScoreResult, name: str, gates: Mapping[str, float]) -> float | None:
    """The total with one component removed: its weight and its gate (a gate-only check's
    whole effect is its gate)."""
    components = {n: c for n, c in result.components.items() if n != name}
    return combine(components, {n: g for n, g in gates.items() if n != name})[0]


def vote_figures(votes: Sequence[KeyedVote], results: Results, gates: Mapping[str, float]) -> dict[str, Any]:
    """Agreement with its interval, skips by reason, Bradley–Terry rank correlation and
    per-component agreement, for one config's results."""
    skipped = collections.Counter({reason: 0 for reason in SKIP_REASONS})
    present: list[KeyedVote] = []  # both files exist: these votes fit the Bradley–Terry model
    decided: list[tuple[Winner, ScoreResult, ScoreResult]] = []
    for a, b, winner in votes:
        if a not in results or b not in results:
            skipped["missing_file"] += 1
            continue
        present.append((a, b, winner))
        if not (results[a].ok and results[b].ok):
            skipped["error_row"] += 1
        elif winner == "tie":
            skipped["tie"] += 1
        else:
            decided.append((winner, results[a], results[b]))
    total = agreement([(w, ra.score, rb.score) for w, ra, rb in decided])
    skipped["judge_tie"] = total.judge_ties

    files = sorted({key for a, b, _ in present for key in (a, b)})
    index = {key: i for i, key in enumerate(files)}
    comparisons = [(index[a], index[b], w) for a, b, w in present]
    strengths = bradley_terry(len(files), comparisons)
    # Strengths are only comparable within a connected part of the vote graph.
    groups = connected_groups(len(files), [(i, j) for i, j, _ in comparisons])
    judge = {key: results[key].score for key in files if results[key].ok and results[key].score is not None}
    correlation = rank_correlation(judge, dict(zip(files, strengths, strict=True)), dict(zip(files, groups, strict=True)))

    names = list(dict.fromkeys(name for _, ra, rb in decided for name in (*ra.components, *rb.components)))
    components = {}
    for name in names:
        alone = agreement([(w, _value(ra, name), _value(rb, name)) for w, ra, rb in decided])
        without = agreement([(w, score_without(ra, name, gates), score_without(rb, name, gates)) for w, ra, rb in decided])
        components[name] = {"alone": _agreement_dict(alone), "without": _agreement_dict(without)}
    return {
        "files": len(files),
        "votes": len(votes),
        "used": total.used,
        "skipped": dict(skipped),
        "agreement": _agreement_dict(total),
        "bradley_terry": dataclasses.asdict(correlation),
        "components": components,
    }


def ranking_figures(ranking: Sequence[KeyedRank], results: Results) -> dict[str, Any]:
    """Spearman/Kendall between the judge's scores and a reference ranking (within its groups)."""
    skipped = {"missing_file": sum(key not in results for key, _, _ in ranking)}
    skipped["error_row"] = sum(key in results and not results[key].ok for key, _, _ in ranking)
    judge = {key: results[key].score for key, _, _ in ranking if key in results and results[key].ok and results[key].score is not None}
    reference = {key: -rank for key, rank, _ in ranking}  # rank 1 is best: negate so higher = better
    groups = {key: group for key, _, group in ranking}
    return {"files": len(ranking), "skipped": skipped, "correlation": dataclasses.asdict(rank_correlation(judge, reference, groups))}


# -- output ------------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _agreement_cell(found: dict[str, Any], interval: bool = True) -> str:
    if found["value"] is None or math.isnan(found["value"]):
        return "— (0)"
    low, high = found["ci95"]
    spread = f" [{_number(low)}, {_number(high)}]" if interval else ""
    return f"{_number(found['value'])}{spread} ({found['decided']})"


def _correlation_cell(found: dict[str, Any]) -> str:
    return f"ρ {_number(found['spearman'])}  τ {_number(found['kendall'])}  (n {found['n']}, groups {found['groups']})"


def _component_cell(found: dict[str, Any], total: float) -> str:
    without = found["without"]["value"]
    change = "" if math.isnan(total) or math.isnan(without) else f" ({total - without:+.3f})"
    return f"{_agreement_cell(found['alone'], interval=False)} | {_number(without)}{change}"


def _rows(label_set: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Table rows (label, one cell per config) for one label file."""
    figures = label_set["figures"]
    if label_set["kind"] == "ranking":
        return [
            ("files", [str(f["files"]) for f in figures]),
            ("skipped: missing file / error row", [f"{f['skipped']['missing_file']} / {f['skipped']['error_row']}" for f in figures]),
            ("rank correlation with the ranking", [_correlation_cell(f["correlation"]) for f in figures]),
        ]
    rows = [
        ("files (existing) / votes", [f"{f['files']} / {f['votes']}" for f in figures]),
        *[(f"skipped: {reason.replace('_', ' ')}", [str(f["skipped"][reason]) for f in figures]) for reason in SKIP_REASONS],
        ("agreement [95% CI] (votes used)", [_agreement_cell(f["agreement"]) for f in figures]),
        ("rank correlation with Bradley–Terry", [_correlation_cell(f["bradley_terry"]) for f in figures]),
        ("per component: alone (decided) | total without it (Δ, + = it helps)", [""] * len(figures)),
    ]
    names = list(dict.fromkeys(name for f in figures for name in f["components"]))
    for name in names:
        cells = []
        for f in figures:
            found = f["components"].get(name)
            cells.append("" if found is None else _component_cell(found, f["agreement"]["value"]))
        rows.append((f"  {name}", cells))
    return rows


def render_table(report: dict[str, Any]) -> str:
    headers = [c["label"] for c in report["configs"]]
    lines = []
    for c in report["configs"]:
        models = "".join(f"; {n} counted" if m["available"] else f"; {n} not counted: {m['reason']}" for n, m in c["batched"].items())
        lines.append(f"{c['label']}: {c['files_scored']} files scored, {c['error_rows']} error rows{models}")
    for label_set in report["labels"]:
        rows = _rows(label_set)
        width = max(len(r[0]) for r in rows)
        cell_width = [max(len(headers[i]), *(len(r[1][i]) for r in rows)) for i in range(len(headers))]
        lines += ["", f"{label_set['file']}  ({label_set['kind']})", "  ".join([" " * width, *(h.ljust(w) for h, w in zip(headers, cell_width, strict=True))]).rstrip()]
        lines += ["  ".join([label.ljust(width), *(c.ljust(w) for c, w in zip(cells, cell_width, strict=True))]).rstrip() for label, cells in rows]
    return "\n".join(lines) + "\n"


def _json_safe(value: Any) -> Any:
    """NaN (an undefined figure) becomes null: JSON has no NaN."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def _config_labels(configs: Sequence[str | None]) -> list[str]:
    stems = [Path(c).stem if c else "default" for c in configs]
    return stems if len(set(stems)) == len(stems) else [c or "default" for c in configs]


@click.command()
@click.argument("labels", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--ranking", "rankings", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="A ranked list: CSV path,rank[,group] or one path per line, best first. Repeatable.")
@click.option("--config", "configs", multiple=True, metavar="NAME|PATH", help="Packaged config name or YAML file; give two (or more) to compare them side by side [default: default].")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="CSV/JSONL path,prompt for files whose label rows name no prompt.")
@click.option("--prompt", default=DEFAULT_PROMPT, show_default=True, help="Prompt for files neither a label row nor the manifest gives one.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@scorer_options
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Worker processes [default: CPU count].")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the result cache.")
def validate(
    labels: tuple[Path, ...],
    rankings: tuple[Path, ...],
    configs: tuple[str, ...],
    manifest: Path | None,
    prompt: str,
    fmt: str,
    clip_weights: str | None,
    device: str | None,
    plugins: tuple[str, ...],
    jobs: int | None,
    no_cache: bool,
) -> None:
    """Measure agreement with reference LABELS: pairwise votes (CSV a,b,winner[,prompt]) and rankings.

    Positional files are told apart by header: a,b,winner is votes, path,rank[,group] is a
    ranking. Paths inside are relative to the file. Prints, per file and config: agreement on
    non-tie votes with a bootstrap 95% interval (fixed seed; votes sharing a file make it
    optimistic), skipped votes by reason, Spearman and Kendall between the judge and a
    Bradley–Terry fit of the votes (within connected parts of the vote graph), and each
    component's agreement alone and the total's agreement without it.

    \b
    Examples:
      svgscore validate votes.csv
      svgscore validate votes.csv --config structural --config mine.yaml --format json
      svgscore validate --ranking best_first.txt
    """
    if not labels and not rankings:
        raise click.UsageError("give a votes or ranking file, or --ranking FILE")
    try:
        prompts = read_manifest(manifest) if manifest else {}
        label_sets = load_labels(labels, rankings, prompts, prompt)
        keys = sorted(set().union(*(s.keys for s in label_sets)))
        # A file that does not exist is a skip reason, not an error row: it is never scored.
        items = [ScoreItem(path=path, prompt=item_prompt) for path, item_prompt in keys if Path(path).is_file()]
        chosen: list[str | None] = list(configs) or [None]
        report: dict[str, Any] = {"configs": [], "labels": [{"file": str(s.path), "kind": "votes" if s.votes is not None else "ranking", "figures": []} for s in label_sets]}
        for config, label in zip(chosen, _config_labels(chosen), strict=True):
            with Scorer(config, jobs=jobs, cache=not no_cache, **scorer_kwargs(clip_weights, device, plugins)) as scorer:
                results = {(r.path, r.prompt): r for r in scorer.score_items(items)}
                gates = scorer.config.gates
                batched = {m.name: scorer.provenance.measures[m.name] for m in scorer.plan.batched}
                sha = scorer.config_sha256
            report["configs"].append({"label": label, "path": config, "config_sha256": sha, "batched": batched, "files_scored": len(results), "error_rows": sum(not r.ok for r in results.values())})
            for label_set, out in zip(label_sets, report["labels"], strict=True):
                figures = vote_figures(label_set.votes, results, gates) if label_set.votes is not None else ranking_figures(label_set.ranking or [], results)
                out["figures"].append(figures)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(json.dumps(_json_safe(report), indent=2, ensure_ascii=False) if fmt == "json" else render_table(report), nl=fmt == "json")
