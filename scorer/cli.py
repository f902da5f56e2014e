"""The ``svgscore`` command line. Results go to stdout (or --output); logs and progress to stderr.

Exit codes: 0 the run completed (broken files are error rows, not failures); 1 the
--baseline regression gate failed; 2 usage or config error; 3 the results could not be
written (disk full, file-size limit, read-only folder); 130 interrupted by Ctrl-C (SIGINT),
143 stopped by SIGTERM. On 3, 130 and 143 the records already written are kept.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TextIO

import click

from .api import Scorer
from .cache import CACHE_ENV, ResultCache, default_cache_dir
from .cliopts import config_option, scorer_kwargs, scorer_options
from .compare.leaderboard import read_results
from .compare.regress import check_regression, manifest_models
from .config import DEFAULT_PROMPT, load_config, packaged_config_text, packaged_configs
from .errors import UsageError
from .inputs import ScoreItem, discover, manifest_errors, read_manifest
from .measure.registry import load_measures, resolve_plugin
from .record import Provenance, ResultKey, ScoreResult
from .report import FORMATS, Report, resume_jsonl
from .version import __version__

_PROGRESS_AFTER = 3  # files; fewer finish before a bar would be worth drawing


class _LazyGroup(click.Group):
    """A group whose other subcommands are imported when one is used, so that ``svgscore score``
    does not pay on every start for scipy (validate, calibrate) and the serve and harness stacks
    (~1.2 s of imports, measured with ``python -X importtime``)."""

    def __init__(self, *args: object, lazy: Mapping[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lazy = dict(lazy)  # command name -> "module:attribute"

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self._lazy and name not in self.commands:
            module, attribute = self._lazy[name].split(":")
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)


@click.group(
    cls=_LazyGroup,
    lazy={
        "validate": "scorer.validate.cli:validate",
        "calibrate": "scorer.validate.calibrate:calibrate_command",
        "compare": "scorer.compare.cli:compare",
        "report": "scorer.compare.cli:report",
        "serve": "scorer.serve.cli:serve_command",
        "generate": "scorer.harness.cli:generate_command",
        "extract": "scorer.harness.cli:extract_command",
    },
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="svgscore")
def main() -> None:
    """Score machine-generated SVG against its prompt: one reproducible, explained number in [0, 100].

    \b
    Examples:
      svgscore score drawings/                          # table on stdout
      svgscore score drawings/ -o results.jsonl         # one JSON record per file, streamed
      svgscore score a.svg --prompt "a turtle wearing roller skates" --format json
      svgscore score runs/ --manifest prompts.csv --clip-weights ViT-B-32.bin
      svgscore checks                                   # what each component measures
    """


@main.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option("--prompt", default=DEFAULT_PROMPT, show_default=True, help="Prompt for files the manifest does not list.")
@click.option(
    "--manifest",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV (header path,prompt) or JSONL ({\"path\",\"prompt\"}) giving each file its prompt; paths relative "
    "to the manifest. Without PATHS, scores the files it lists.",
)
@config_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Output format [default: from --output's suffix, else table].")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write results here instead of stdout.")
@scorer_options
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Worker processes [default: CPU count].")
@click.option("--no-cache", is_flag=True, help=f"Neither read nor write the result cache (${CACHE_ENV}, default ~/.cache/svgscore).")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Model judges (vlm): render and read the judge's answer cache, call nothing; say how many calls a run would make. Writes no results.",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue an interrupted run into the same --output FILE.jsonl: keep its records and score only "
    "the files missing (same path, bytes, prompt and judge: config, renderer, models).",
)
@click.option(
    "--baseline",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Regression gate: an earlier results file (JSONL/JSON). Exit 1 if the mean, a model (the manifest's "
    "model column) or a file (same path) dropped by more than --max-drop points; error rows count as 0. Exit 2 if "
    "the baseline was made by a different judge (see --allow-judge-change).",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Where files are scored: this machine's worker pool, or a Ray cluster (pip install 'svgscore[ray]'; the "
    "config's ray: section sets files per task and each batched measure's actors and GPUs). Same records either way.",
)
@click.option(
    "--ray-address",
    metavar="ADDRESS",
    help="With --executor ray: the cluster to join (auto, ray://HOST:10001) [default: $RAY_ADDRESS, else one started here].",
)
@click.option(
    "--rows",
    type=click.Path(exists=True, path_type=Path),
    help="With --executor ray, instead of PATHS: Parquet (file or folder) or JSONL rows of id, svg or path, prompt; "
    "paths relative to its folder. Read by the cluster.",
)
@click.option("--max-drop", type=click.FloatRange(min=0), default=2.0, show_default=True, help="With --baseline: the largest drop, in score points, that passes.")
@click.option("--max-file-drop", type=click.FloatRange(min=0), help="With --baseline: a looser limit for single files [default: --max-drop].")
@click.option(
    "--allow-judge-change",
    is_flag=True,
    help="With --baseline: gate even if the baseline was made by a different judge (svgscore, config, renderer "
    "or model versions that can move scores), saying what differs [default: refuse, exit 2].",
)
def score(
    paths: tuple[Path, ...],
    prompt: str,
    manifest: Path | None,
    config: str | None,
    fmt: str | None,
    output: Path | None,
    clip_weights: str | None,
    device: str | None,
    plugins: tuple[str, ...],
    jobs: int | None,
    no_cache: bool,
    dry_run: bool,
    resume: bool,
    baseline: Path | None,
    max_drop: float,
    max_file_drop: float | None,
    allow_judge_change: bool,
    executor: str,
    ray_address: str | None,
    rows: Path | None,
) -> None:
    """Score SVG files and directories (recursively: *.svg, *.svgz).

    Every file gets exactly one record, broken ones included (status "error" with a code).
    """
    if not paths and manifest is None and rows is None:
        raise click.UsageError("give at least one PATH or a --manifest")
    if executor != "ray" and (rows or ray_address):
        raise click.UsageError("--rows and --ray-address go with --executor ray")
    if rows and (paths or manifest):
        raise click.UsageError("--rows replaces PATHS and --manifest")
    fmt = fmt or _format_for(output)
    if resume and (output is None or fmt != "jsonl"):
        raise click.UsageError("--resume continues a JSONL file: give --output FILE.jsonl")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # Past a file-size limit (ulimit -f) a write then fails with EFBIG, reported below, instead
    # of the signal killing the process mid-line.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        prompts = read_manifest(manifest) if manifest else {}
        errors = manifest_errors(manifest) if manifest else {}
        items = discover(paths or [Path(p) for p in prompts], prompt, prompts, errors)
        if dry_run:
            _dry_run(config, items, jobs, scorer_kwargs(clip_weights, device, plugins))
            return
        before = read_results(baseline) if baseline else None  # a bad baseline fails before any scoring
        scored: list[ScoreResult] = []  # this run's records, for the gate
        with contextlib.ExitStack() as stack:
            scorer = stack.enter_context(
                # On Ray this Scorer only binds the config (columns, judge): the cluster scores, uncached.
                Scorer(config, jobs=jobs, cache=not no_cache and executor == "local", **scorer_kwargs(clip_weights, device, plugins))
            )
            done: set[ResultKey] = set()
            if resume:
                kept = resume_jsonl(output)
                # Records another judge made (another config, renderer, model...) are scored again.
                judge = scorer.provenance.judge()
                scored = [r for r in kept if r.provenance.judge() == judge]
                done = {r.key for r in scored}
                click.echo(f"resume: {len(kept)} records kept, {len(scored)} of them made by this judge (config, renderer, models)", err=True)
            stream = stack.enter_context(_open_output(output, append=resume, atomic=fmt in ("json", "table")))
            report = Report(fmt, stream, list(scorer.plan.measures))
            # Also on Ctrl-C or a crash: what was scored is written. Not on a usage error
            # (e.g. CLIP required but unavailable): exit 2 prints nothing but the reason.
            stack.push(lambda kind, *_: None if kind and issubclass(kind, UsageError) else report.close())
            if executor == "ray":
                results = _ray_results(config, scorer_kwargs(clip_weights, device, plugins), items, rows, done, ray_address)
            else:
                results = scorer.score_items(items, skip=done)
            for count, result in enumerate(_with_progress(results)):
                if count == 0:
                    _say_setup(scorer, result.provenance if executor == "ray" else None)
                report.add(result)
                if before is not None:
                    scored.append(result)
            _say_accounts(scorer)
        if before is not None:
            models = manifest_models(manifest) if manifest else None
            gate = check_regression(
                before, scored, max_drop=max_drop, max_file_drop=max_file_drop, models=models, allow_judge_change=allow_judge_change
            )
            click.echo("\n".join(gate.lines()), err=True)
            if gate.refused:
                sys.exit(2)
            if gate.failed:
                sys.exit(1)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        # Output only: unreadable inputs are error rows, and the cache turns itself off.
        where = exc.filename or output or "stdout"
        click.echo(f"error: cannot write results to {where}: {exc.strerror or exc}; records written before it are kept", err=True)
        sys.exit(3)
    except KeyboardInterrupt as exc:
        stopped = "stopped by SIGTERM" if isinstance(exc, _Terminated) else "interrupted"
        click.echo(f"{stopped}: records scored so far were written", err=True)
        sys.exit(143 if isinstance(exc, _Terminated) else 130)


class _Terminated(KeyboardInterrupt):
    """SIGTERM (a job scheduler, ``timeout``, ``docker stop``): stop as Ctrl-C does, keeping the records."""


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise _Terminated


def _say_accounts(scorer: Scorer, *, err: bool = True) -> None:
    """What the batched measures that keep accounts (model judges) spent this run; on stderr."""
    for name, lines in scorer.measure_summaries().items():
        for line in lines:
            click.echo(f"{name}: {line}", err=err)


def _dry_run(config: str | None, items: Iterator[ScoreItem], jobs: int | None, kwargs: dict) -> None:
    """``score --dry-run``: score with every model judge counting instead of calling, then say on
    stdout what a run would ask. Files are rendered (a question's key is its picture's hash);
    the judge's answer cache says which answers a run already has."""
    with Scorer(config, jobs=jobs, **kwargs) as probe:
        judges = {b.name: {"dry_run": True} for b in probe.plan.batched if "dry_run" in type(b.params).model_fields}
    if not judges:
        raise UsageError("--dry-run: the config has no model judge (vlm); nothing would be called")
    params = {name: {**(kwargs.get("params") or {}).get(name, {}), **extra} for name, extra in judges.items()}
    with Scorer(config, jobs=jobs, **{**kwargs, "params": {**(kwargs.get("params") or {}), **params}}) as scorer:
        files = sum(1 for _ in scorer.score_items(items))
        click.echo(f"dry run: {files} files rendered, no call made")
        _say_accounts(scorer, err=False)


def _ray_results(
    config: str | None, kwargs: dict, items: Iterator[ScoreItem], rows: Path | None, skip: set[ResultKey], address: str | None
) -> Iterator[ScoreResult]:
    """``--executor ray``: the records, scored on the cluster and streamed back here as they finish."""
    from .executors import ray as on_ray

    ray = on_ray.connect(address)
    dataset = on_ray.read_rows(rows) if rows else ray.data.from_items(on_ray.input_rows(items))
    scored = on_ray.score_dataset(dataset, config, skip=skip, base_dir=rows.resolve().parent if rows else None, **kwargs)
    yield from on_ray.results(scored)


def _say_setup(scorer: Scorer, provenance: Provenance | None = None) -> None:
    """On stderr: what judges this run (config, renderer), and per batched measure whether it loaded
    (``provenance``: as a record made elsewhere says, e.g. on a Ray cluster)."""
    provenance = provenance or scorer.provenance
    click.echo(provenance.summary(), err=True)
    for bound in scorer.plan.batched:
        info = provenance.measures[bound.name]
        what = " / ".join(str(info[k]) for k in ("model", "pretrained") if info.get(k))
        state = f"loaded{' on ' + info['device'] if info.get('device') else ''}" if info["available"] else f"not counted ({info['reason']})"
        click.echo(f"{bound.name}: {what + ': ' if what else ''}{state}", err=True)


@main.group()
def cache() -> None:
    """The result cache: a record per (file bytes, prompt, config), reused by later runs."""


@cache.command("clear")
def cache_clear() -> None:
    """Delete every cached result."""
    store = ResultCache()
    removed = store.clear()
    store.close()
    click.echo(f"removed {removed} cached results from {store.path}")


@cache.command("path")
def cache_path() -> None:
    """Print where the cache lives."""
    click.echo(str(default_cache_dir() / "results.sqlite3"))


@main.command()
@click.option("--config", "config", metavar="NAME|PATH", help="Also load the plugins this config names.")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE", help="A module or .py file registering outside measures.")
def checks(config: str | None, plugins: tuple[str, ...]) -> None:
    """List every measure a config can use — built-in and from plugins — with where it comes from."""
    try:
        loaded = load_config(config).with_plugins(resolve_plugin(p, os.getcwd()) for p in plugins)
        known = load_measures(tuple(resolve_plugin(p, loaded.base_dir) for p in loaded.plugins))
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    for name, measure in sorted(known.items()):
        subject = f"  [applies when the prompt asks for {measure.subject}]" if measure.subjects else ""
        kind = "batched, " if measure.kind == "batched" else ""
        version = f" {measure.origin.version}" if measure.origin.version else ""
        click.echo(f"{name:18} {measure.description}{subject}  ({kind}{measure.origin.source}{version})")
        for field, info in measure.params.model_fields.items():
            click.echo(f"{'':18}   params.{field} = {info.default!r}" + (f"  ({info.description})" if info.description else ""))


@main.group(invoke_without_command=True)
@click.pass_context
def configs(ctx: click.Context) -> None:
    """The configs shipped in the package, usable by name (--config NAME)."""
    if ctx.invoked_subcommand is None:
        for name, line in packaged_configs().items():
            click.echo(f"{name:12} {line}")


@configs.command("show")
@click.argument("name")
def configs_show(name: str) -> None:
    """Print a packaged config's YAML (copy it to start your own)."""
    try:
        click.echo(packaged_config_text(name), nl=False)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None


def _format_for(output: Path | None) -> str:
    suffix = output.suffix.lower().lstrip(".") if output else ""
    return suffix if suffix in ("json", "jsonl", "csv") else "table"


@contextlib.contextmanager
def _open_output(output: Path | None, *, append: bool, atomic: bool) -> Iterator[TextIO]:
    """stdout, or the output file: appended to (resume), or written whole and renamed into
    place (formats written at the end), so a killed run never leaves half a document."""
    if output is None:
        yield sys.stdout
        return
    # Only a regular file is replaced by a rename: /dev/null, a FIFO or /dev/stdout is written
    # in place (renaming onto /dev/null would swap the device for a file).
    atomic = atomic and (not output.exists() or output.is_file())
    target = output.with_name(output.name + ".partial") if atomic else output
    try:
        with open(target, "a" if append else "w", encoding="utf-8", newline="") as stream:
            yield stream
    finally:
        # Also on Ctrl-C: the report was closed (written whole) before the stream.
        if atomic and target.stat().st_size:
            os.replace(target, output)
        elif atomic:
            target.unlink()


def _with_progress(results: Iterator) -> Iterator:
    """Pass results through, drawing a progress line on an interactive stderr after a few files."""
    if not sys.stderr.isatty():
        yield from results
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(SpinnerColumn(), TextColumn("{task.completed} files scored"), TimeElapsedColumn(), console=Console(stderr=True), transient=True)
    task = progress.add_task("score", total=None)
    try:
        for count, result in enumerate(results, start=1):
            if count == _PROGRESS_AFTER:
                progress.start()
            progress.update(task, completed=count)
            yield result
    finally:
        progress.stop()

