"""``svgscore generate`` and ``svgscore extract``: getting SVGs out of models, for ``score`` to judge."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from ..errors import ItemError, UsageError
from .extract import extract_from_saved
from .generate import MANIFEST, OnSample, RunOptions, generate, load_models, load_prompts, plan


@click.command("generate")
@click.option("--models", "models_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="YAML file of models and endpoints (see configs/generate/models.example.yaml).")
@click.option("--prompts", "prompts_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Prompt set: .txt (one per line) or .yaml (a list), e.g. configs/generate/prompts/pelican.txt.")
@click.option("--samples", "-n", type=click.IntRange(min=1), default=1, show_default=True, help="Samples per model and prompt.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Output folder: <model>/<prompt-slug>/<NN>.svg and manifest.jsonl.")
@click.option("--model", "only", multiple=True, help="Only this model of the models file (repeatable).")
@click.option("--concurrency", "-j", type=click.IntRange(min=1), default=RunOptions.concurrency, show_default=True, help="Requests in flight at once, over all models.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=RunOptions.timeout_s, show_default=True, help="Seconds per request, the whole reply included.")
@click.option("--retries", type=click.IntRange(min=0), default=RunOptions.retries, show_default=True, help="Further attempts after a 408/429/5xx, a timeout or a connection error.")
@click.option("--retry-delay", type=click.FloatRange(min=0), default=RunOptions.retry_delay_s, show_default=True, help="First backoff in seconds, doubled each retry; a server's Retry-After wins.")
def generate_command(
    models_path: Path,
    prompts_path: Path,
    samples: int,
    out: Path,
    only: tuple[str, ...],
    concurrency: int,
    timeout: float,
    retries: int,
    retry_delay: float,
) -> None:
    """Ask every model for every prompt, SAMPLES times; write the SVGs, the raw replies and a manifest.

    Resumable: samples already in OUT are skipped without a request (failed requests are asked
    again). API keys come from the environment variables the models file names, never from files.
    Prints the manifest's path; score it with `svgscore score --manifest OUT/manifest.jsonl`.

    Exit codes: 0 every sample has an outcome (an SVG, or the model's failure to give one);
    1 some requests failed (their rows say why; run the command again to retry them);
    2 usage or config error; 130 interrupted (finished samples and the manifest are kept).
    """
    try:
        models_file = load_models(models_path)
        jobs = plan(models_file, load_prompts(prompts_path), samples, only)
        options = RunOptions(concurrency=concurrency, timeout_s=timeout, retries=retries, retry_delay_s=retry_delay)
        with _progress() as on_sample:
            summary = generate(models_file, jobs, out, options, on_sample=on_sample)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    except KeyboardInterrupt:
        click.echo(f"interrupted: finished samples and {out / MANIFEST} were kept; run again to continue", err=True)
        sys.exit(130)
    outcomes = ", ".join(f"{count} {name}" for name, count in sorted(summary.outcomes.items()))
    click.echo(f"generate: {len(summary.rows)} samples ({outcomes}); {summary.made} made now, {summary.skipped} already there", err=True)
    if summary.changed:
        click.echo(f"note: {summary.changed} samples already there were made with other settings (model, temperature, "
                   "max_tokens, seed, system or prompt text); delete them to make them anew", err=True)  # fmt: skip
    click.echo(str(out / MANIFEST))
    if summary.request_failures:
        click.echo(f"{summary.request_failures} samples have no reply (request failures); run the same command again to retry them", err=True)
        sys.exit(1)


@contextmanager
def _progress() -> Iterator[OnSample]:
    """A callback reporting each finished sample: failures as lines, and a bar on an interactive stderr."""
    if not sys.stderr.isatty():
        yield lambda row, done, total: _say_failure(row, lambda text: click.echo(text, err=True))
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True), transient=True)
    task = progress.add_task("generate", total=None)

    def on_sample(row: dict[str, Any] | None, done: int, total: int) -> None:
        progress.start()
        progress.update(task, completed=done, total=total)
        _say_failure(row, lambda text: progress.console.print(text, markup=False, highlight=False))

    try:
        yield on_sample
    finally:
        progress.stop()


def _say_failure(row: dict[str, Any] | None, say: Callable[[str], None]) -> None:
    if row is not None and row["error_code"]:
        say(f"{row['path']}: {row['error_code']}: {row['error_message']}")


@click.command("extract")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, allow_dash=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["svg", "jsonl"]), help="svg: the SVG itself (one input); jsonl: a row per input [default: svg for one input, else jsonl].")
def extract_command(files: tuple[Path, ...], fmt: str | None) -> None:
    """Extract the SVG from model replies produced elsewhere (FILES, or - / nothing for stdin).

    A reply is plain text (markdown, prose, HTML) or a saved OpenAI / Anthropic JSON response.
    The last complete <svg> element is taken, fenced blocks first; several candidates or a cut-off
    reply are noted. JSONL rows: source, status, svg, note, error_code (truncated_output, no_svg,
    malformed_response), error_message. With --format svg, a reply without an SVG exits 1.
    """
    sources = files or (Path("-"),)
    fmt = fmt or ("svg" if len(sources) == 1 else "jsonl")
    if fmt == "svg" and len(sources) > 1:
        raise click.UsageError("several inputs give several SVGs: use --format jsonl")
    for source in sources:
        row = _extract_row(source)
        if fmt == "jsonl":
            click.echo(json.dumps(row, ensure_ascii=False))
        elif row["svg"] is None:
            click.echo(f"{row['source']}: {row['error_code']}: {row['error_message']}", err=True)
            sys.exit(1)
        else:
            if row["note"]:
                click.echo(f"note: {row['note']}", err=True)
            click.echo(row["svg"])


def _extract_row(source: Path) -> dict[str, Any]:
    name = "-" if str(source) == "-" else str(source)
    try:
        text = sys.stdin.read() if name == "-" else source.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise click.UsageError(f"cannot read {source}: {exc.strerror}") from None
    try:
        found = extract_from_saved(text)
    except ItemError as exc:
        return {"source": name, "status": "error", "svg": None, "note": None, "error_code": exc.code, "error_message": exc.message}
    return {"source": name, "status": "ok", "svg": found.svg, "note": found.note, "error_code": None, "error_message": None}
