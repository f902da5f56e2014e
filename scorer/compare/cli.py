"""``svgscore compare`` and ``svgscore report``: thin wrappers over :mod:`scorer.compare.leaderboard` and
:mod:`scorer.compare.html`."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import click

from ..config import load_config
from ..errors import UsageError
from ..record import distinct_provenances
from .leaderboard import (
    DEFAULT_RESAMPLES,
    DEFAULT_SEED,
    ERROR_POLICIES,
    PATH_GROUPINGS,
    Labelled,
    Leaderboard,
    collect_records,
    default_grouping,
    leaderboard,
    sample_of,
    write_table,
)

COMPARE_FORMATS = ("table", "json", "html")


def _shared_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options compare and report share: what to read, how to name models, the bootstrap."""
    options = [
        click.argument("results", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)),
        click.option(
            "--manifest",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="CSV or JSONL with a 'path' column (relative to the manifest) and the column --by names, "
            "e.g. the manifest `svgscore generate` writes. Records keep paths as `score` was given them: "
            "run this from the same folder.",
        ),
        click.option(
            "--by",
            help=f"What names a record's model: a manifest column, or one of {', '.join(PATH_GROUPINGS)} "
            "(the SVG's folder, its file name, the results file's name). [default: model with --manifest; "
            "else results when several RESULTS are given; else dir]",
        ),
        click.option(
            "--errors",
            type=click.Choice(ERROR_POLICIES),
            default="zero",
            show_default=True,
            help="Error rows (no drawing) count as score 0, or are left out of the means (counted either way).",
        ),
        click.option("--resamples", type=click.IntRange(min=100), default=DEFAULT_RESAMPLES, show_default=True, help="Bootstrap resamples."),
        click.option("--seed", type=click.IntRange(min=0), default=DEFAULT_SEED, show_default=True, help="Bootstrap seed: same seed, same intervals."),
        click.option(
            "--allow-judge-change",
            is_flag=True,
            help="Compare records made by different judges (svgscore, config, renderer or model versions that can "
            "move scores), saying what differs, instead of refusing (exit 2).",
        ),
        click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="HTML only: limits and renderer for the thumbnails [default: built-in]."),
        click.option("--jobs", "-j", type=click.IntRange(min=1), help="HTML only: worker processes rendering thumbnails [default: CPU count]."),
        click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command()
@_shared_options
@click.option("--format", "fmt", type=click.Choice(COMPARE_FORMATS), help="[default: from --output's suffix, else table]")
@click.option("--all-pairs", is_flag=True, help="Table: list every pair, not only adjacent ranks (JSON and HTML have all).")
@click.option("--pairwise", is_flag=True, help="Rank by a model judge's pairwise verdicts (needs --judge): Bradley–Terry ratings, not mean scores.")
@click.option("--judge", "judge_config", metavar="NAME|PATH", help="With --pairwise: a scoring config whose vlm measure judges the pairs.")
@click.option("--max-pairs", type=click.IntRange(min=1), help="With --pairwise: judge at most this many pairs, spent where ratings are closest [default: every pair].")
@click.option("--votes-out", type=click.Path(dir_okay=False, path_type=Path), help="With --pairwise: write the verdicts as a votes CSV (a,b,winner,prompt) for `svgscore validate`.")
@click.option("--dry-run", is_flag=True, help="With --pairwise: render and read the judge's cache, call nothing; say how many calls a run would make.")
def compare(
    fmt: str | None,
    all_pairs: bool,
    pairwise: bool,
    judge_config: str | None,
    max_pairs: int | None,
    votes_out: Path | None,
    dry_run: bool,
    **options: Any,
) -> None:
    """Leaderboard of models from result files: mean score with bootstrap 95% intervals over
    prompts and samples, pairwise win probabilities, per-component means, and whether the data
    can separate each model from the next.

    \b
    Examples:
      svgscore compare runs.jsonl --manifest runs/manifest.jsonl          # model column
      svgscore compare model-a.jsonl model-b.jsonl                        # one file per model
      svgscore compare runs.jsonl --by dir --format json                  # runs/<model>/*.svg
      svgscore compare runs.jsonl --judge configs/vlm.example.yaml --pairwise --max-pairs 200
    """
    if (judge_config is None) != (not pairwise) or ((max_pairs or votes_out or dry_run) and not pairwise):
        raise click.UsageError("--pairwise and --judge go together; --max-pairs, --votes-out and --dry-run need them")
    output = options["output"]
    if pairwise:
        if fmt == "html" or all_pairs:
            raise click.UsageError("--pairwise writes a table or JSON")
        _pairwise(fmt or ("json" if output and output.suffix.lower() == ".json" else "table"), judge_config, max_pairs, votes_out, dry_run, **options)
        return
    suffix = output.suffix.lower().lstrip(".") if output else ""
    _run(fmt or (suffix if suffix in COMPARE_FORMATS else "table"), all_pairs=all_pairs, **options)


@click.command()
@_shared_options
@click.option("--title", default="svgscore report", show_default=True, help="Page title.")
def report(title: str, **options: Any) -> None:
    """A self-contained HTML page: leaderboard with intervals, gallery of renders (sortable,
    filterable by model, prompt and score) and two models side by side on the same prompts.

    Same as `compare --format html`. Thumbnails are rendered from the SVG files in isolated
    workers, so the files must still be where the records say.

    \b
    Example:
      svgscore report runs.jsonl --manifest runs/manifest.jsonl -o report.html
    """
    _run("html", title=title, **options)


def _run(
    fmt: str,
    *,
    results: tuple[Path, ...],
    manifest: Path | None,
    by: str | None,
    errors: str,
    resamples: int,
    seed: int,
    allow_judge_change: bool,
    config_path: Path | None,
    jobs: int | None,
    output: Path | None,
    all_pairs: bool = False,
    title: str = "svgscore report",
) -> None:
    try:
        by = by or default_grouping(manifest=manifest is not None, results_files=len(results))
        labelled, notes = collect_records(results, by=by, manifest=manifest, allow_judge_change=allow_judge_change)
        board = leaderboard(
            [sample_of(m, r) for m, r in labelled],
            errors=errors,  # type: ignore[arg-type]
            resamples=resamples,
            seed=seed,
            notes=notes,
            provenance=distinct_provenances(r.provenance for _, r in labelled),
        )
        # Everything is made before anything is written: a failure leaves no half file.
        buffer = io.StringIO()
        _write(fmt, labelled, board, buffer if output else sys.stdout, config_path=config_path, jobs=jobs, all_pairs=all_pairs, title=title)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    if output:
        output.write_text(buffer.getvalue(), encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


def _pairwise(
    fmt: str,
    judge_config: str,
    max_pairs: int | None,
    votes_out: Path | None,
    dry_run: bool,
    *,
    results: tuple[Path, ...],
    manifest: Path | None,
    by: str | None,
    errors: str,
    resamples: int,
    seed: int,
    allow_judge_change: bool,
    jobs: int | None,
    output: Path | None,
    config_path: Path | None,
) -> None:
    """``compare --judge CONFIG --pairwise``: see :mod:`scorer.compare.pairwise`."""
    from .pairwise import tournament, write_dry_run, write_json, write_table, write_votes

    buffer = io.StringIO()
    try:
        by = by or default_grouping(manifest=manifest is not None, results_files=len(results))
        labelled, notes = collect_records(results, by=by, manifest=manifest, allow_judge_change=allow_judge_change)
        found, contestants, client = tournament(
            labelled, judge_config, errors=errors, max_pairs=max_pairs, resamples=resamples, seed=seed, jobs=jobs, dry_run=dry_run
        )
        try:
            found.notes.extend(notes)
            stream = buffer if output else sys.stdout
            if dry_run:
                write_dry_run(found, client, stream)
            elif fmt == "json":
                write_json(found, contestants, client, stream)
            else:
                write_table(found, client, stream)
        finally:
            client.close()
        if votes_out is not None and not dry_run:
            rows = write_votes(votes_out, found, contestants)
            click.echo(f"wrote {rows} votes to {votes_out}", err=True)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    if output:
        output.write_text(buffer.getvalue(), encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


def _write(
    fmt: str,
    labelled: list[Labelled],
    board: Leaderboard,
    stream: TextIO,
    *,
    config_path: Path | None,
    jobs: int | None,
    all_pairs: bool,
    title: str,
) -> None:
    if fmt == "json":
        json.dump(board.to_dict(), stream, indent=2, ensure_ascii=False)
        stream.write("\n")
    elif fmt == "html":
        from .html import write_report

        write_report(labelled, board, load_config(config_path), stream, jobs=jobs, title=title)
    else:
        write_table(board, stream, all_pairs=all_pairs)
