"""``svgscore compare --judge CONFIG --pairwise``: a model judge compares drawings two at a time.

The records say which drawings each model made for which prompt; the drawings are rendered
again here (isolated workers, the judge config's limits and renderer) into the picture the
``vlm`` measure sees — without ``<text>`` — and the judge of that config's ``vlm`` measure is
asked which of two is better (:mod:`scorer.judge.tournament`). Answers share the judge's
cache, so a re-run makes no calls.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ..config import Config, MeasureConfig, load_config
from ..errors import JudgeError, UsageError
from ..inputs import ScoreItem
from ..isolation import WorkerPool
from ..judge.client import Answer, JudgeClient, Picture, picture, question
from ..judge.rubric import Verdict as Said
from ..judge.rubric import parse_verdict
from ..judge.tournament import NO_RENDER, Contestant, Tournament, Verdict, run
from ..measure.bind import bind
from ..measure.vlm import VlmParams, open_client
from ..pipeline import FileTask, make_analyzer
from .leaderboard import Labelled

_SWAP: dict[Said, Said] = {"a": "b", "b": "a", "tie": "tie"}


def judge_of(config: Config) -> VlmParams:
    """The parameters of the config's one ``vlm`` measure (a :class:`UsageError` if it has none, or several)."""
    found = [bound for bound in bind(config).batched if isinstance(bound.params, VlmParams)]
    if len(found) != 1:
        what = "no model-judge measure" if not found else f"{len(found)} model-judge measures ({', '.join(b.name for b in found)})"
        raise UsageError(f"--judge {config.name}: the config has {what}; it needs exactly one (e.g. checks: vlm: params: judges: ...)")
    return found[0].params  # type: ignore[return-value]


def contestants_of(labelled: Sequence[Labelled], errors: str) -> list[Contestant]:
    """One contestant per record with a file; error rows stay (they lose) unless ``errors='exclude'``."""
    found = []
    for model, record in labelled:
        if record.path is None or (not record.ok and errors == "exclude"):
            continue
        found.append(Contestant(model, record.prompt, record.path, record.ok))
    return found


def render_pictures(contestants: Sequence[Contestant], config: Config, params: VlmParams, jobs: int | None) -> list[Picture | None]:
    """What the judge is shown of each contestant (None: nothing to show), rendered as the
    ``vlm`` measure's picture: the config's renderer and size, the render without ``<text>``."""
    # Only the render is wanted: the cheapest per-file measure keeps the config valid.
    only_render = config.model_copy(update={"checks": {"renders": MeasureConfig(weight=1.0)}, "plugins": ()})
    files = [ScoreItem(c.path, c.prompt).read(config.limits) if c.rendered else None for c in contestants]
    todo = [k for k, f in enumerate(files) if f is not None and f.error is None]
    shown: list[Picture | None] = [None] * len(contestants)
    if todo:
        factory = functools.partial(make_analyzer, only_render)
        with WorkerPool(factory, jobs=jobs or os.cpu_count() or 1, timeout_s=config.render.timeout_s, memory_mb=config.render.memory_mb) as pool:
            tasks = (FileTask(files[k].data, contestants[k].prompt) for k in todo)  # type: ignore[union-attr]
            for k, outcome in zip(todo, pool.imap(tasks), strict=True):
                if not isinstance(outcome, Exception):
                    shown[k] = picture(outcome.image, params.max_image_px)
    return shown


def asker(client: JudgeClient, params: VlmParams, contestants: Sequence[Contestant], pictures: Sequence[Picture | None]) -> Any:
    """The tournament's ``ask``: every pair to every judge, ``samples`` times, in both orders."""

    def ask(pairs: Sequence[tuple[int, int]]) -> list[tuple[Verdict, ...]]:
        questions = []
        for a, b in pairs:
            first, second = pictures[a], pictures[b]
            for judge in params.judges:
                for sample in range(params.samples):
                    for shown in ([first, second], [second, first]):
                        questions.append(question(judge, client.rubric, mode="pairwise", prompt=contestants[a].prompt, pictures=shown, sample=sample))
        answers = iter(client.ask(questions, parse_verdict))
        out = []
        for _ in pairs:
            verdicts = []
            for judge in params.judges:
                for _sample in range(params.samples):
                    forward, reverse = _said(next(answers)), _said(next(answers))
                    verdicts.append(Verdict(judge.name, forward, None if reverse is None else _SWAP[reverse]))
            out.append(tuple(verdicts))
        return out

    return ask


def _said(answer: Answer[tuple[Said, str]] | JudgeError) -> Said | None:
    return None if isinstance(answer, JudgeError) else answer.value[0]


def tournament(
    labelled: Sequence[Labelled],
    judge_config: str | Path,
    *,
    errors: str,
    max_pairs: int | None,
    resamples: int,
    seed: int,
    jobs: int | None,
    dry_run: bool = False,
) -> tuple[Tournament, list[Contestant], JudgeClient]:
    config = load_config(judge_config)
    params = judge_of(config)
    if dry_run:
        params = params.model_copy(update={"dry_run": True})
    contestants = contestants_of(labelled, errors)
    if len({c.model for c in contestants}) < 2:
        raise UsageError("a pairwise tournament needs drawings by at least two models (see --by)")
    client = open_client(params, named_in=f"judge config {config.name}")
    try:
        pictures = render_pictures(contestants, config, params, jobs)
        # A file that no longer renders is shown as nothing: it loses, as an error row does.
        contestants = [c if p is not None or not c.rendered else Contestant(c.model, c.prompt, c.path, False) for c, p in zip(contestants, pictures, strict=True)]
        found = run(contestants, asker(client, params, contestants, pictures), max_pairs=max_pairs, round_size=params.concurrency * 2, resamples=resamples, seed=seed)
    except BaseException:
        client.close()
        raise
    return found, contestants, client


# -- output ------------------------------------------------------------------------------------


def write_votes(path: Path, found: Tournament, contestants: Sequence[Contestant]) -> int:
    """The judge's verdicts as a votes CSV (a,b,winner,prompt; paths relative to the file), for
    ``svgscore validate``. Pairs decided without the judge, or unanswered, are left out."""
    folder = path.resolve().parent
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["a", "b", "winner", "prompt"])
    rows = 0
    for judged in found.judged:
        winner = judged.winner()
        if winner is None or judged.verdicts[0].judge == NO_RENDER:
            continue
        a, b = contestants[judged.a], contestants[judged.b]
        writer.writerow([os.path.relpath(Path(a.path).resolve(), folder), os.path.relpath(Path(b.path).resolve(), folder), winner, a.prompt])
        rows += 1
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return rows


def to_dict(found: Tournament, contestants: Sequence[Contestant], client: JudgeClient) -> dict[str, Any]:
    data = found.to_dict()
    data["contestants"] = [dataclasses.asdict(c) for c in contestants]
    data["judges"] = client.accounts()
    data["rubric_version"] = client.rubric.version
    return data


def write_table(found: Tournament, client: JudgeClient, stream: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Pairwise ratings", title_justify="left", pad_edge=False)
    for column in ("#", "model", "pairs", "answers", "won", "rating", "95% CI"):
        table.add_column(column, justify="left" if column == "model" else "right", no_wrap=True)
    for rank, r in enumerate(found.ratings, start=1):
        won = f"{r.wins / r.answers:.0%}" if r.answers else "—"
        interval = "—" if r.interval is None else f"{r.interval[0]:+.2f} – {r.interval[1]:+.2f}"
        table.add_row(str(rank), r.model, str(r.pairs), str(r.answers), won, f"{r.rating:+.2f}", interval)
    steps = Table(title="Adjacent ranks", title_justify="left", pad_edge=False)
    for column in ("A", "B", "A − B", "95% CI", "P(A > B)", "verdict"):
        steps.add_column(column, justify="left" if column in ("A", "B", "verdict") else "right", no_wrap=True)
    for s in found.steps:
        interval = "—" if s.interval is None else f"{s.interval[0]:+.2f} – {s.interval[1]:+.2f}"
        verdict = "separable" if s.separable else "too few" if s.interval is None else "cannot separate"
        steps.add_row(s.a, s.b, f"{s.difference:+.2f}", interval, f"{s.p_a_beats_b:.2f}", verdict)
    interactive = stream.isatty()
    console = Console(file=stream, width=None if interactive else 1000, force_terminal=interactive, highlight=False)
    judges = ", ".join(f"{j.name} ({j.model})" for j in client.judges)
    console.print(f"Judge{'s' if len(client.judges) > 1 else ''} {judges}, rubric version {client.rubric.version}", soft_wrap=True)
    console.print(table)
    if found.steps:
        console.print(steps)
    for line in found.sentences():
        console.print(line, soft_wrap=True)
    for line in client.summary(per=("pairs", len(found.judged))):
        console.print(line, soft_wrap=True)


def write_dry_run(found: Tournament, client: JudgeClient, stream: TextIO) -> None:
    stream.write(f"dry run: {len(found.judged)} of {found.candidates} pairs would be judged, each in both orders; no call made\n")
    for line in client.summary():
        stream.write(line + "\n")


def write_json(found: Tournament, contestants: Sequence[Contestant], client: JudgeClient, stream: TextIO) -> None:
    json.dump(to_dict(found, contestants, client), stream, indent=2, ensure_ascii=False)
    stream.write("\n")
