"""``svgscore generate``: prompts × models × samples → SVG files, raw replies and a manifest.

What a run leaves under its output folder::

    manifest.jsonl                          one row per sample; `svgscore score --manifest` reads it
    <model>/<prompt-slug>/<NN>.svg          the SVG extracted from the reply (samples that have one)
    <model>/<prompt-slug>/<NN>.response.*   the endpoint's last HTTP body, verbatim (.json, or .txt if not JSON)
    <model>/<prompt-slug>/<NN>.meta.json    the sample's manifest row, written last

A sample is *done* once its ``.meta.json`` says it has an SVG or the model failed to give one
(``truncated_output``, ``no_svg``); a rerun skips done samples without a request and asks
again for those whose request failed. API keys are read from the environment variables the
models file names, sent in headers only, and redacted from anything written.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from ..config import _Strict, describe, read_yaml
from ..errors import ConfigError, ItemError, NoSvgError, TruncatedOutputError, UsageError
from .endpoints import ModelSpec, api_keys, build_request, parse_reply
from .extract import extract_svg
from .transport import Attempt, RunOptions, ask_each, redact, run_sync, secrets_of

MANIFEST = "manifest.jsonl"
DEFAULT_TEMPLATE = "Generate an SVG of {prompt}"
# Outcomes that are the model's answer: asking again would re-roll the sample until it passes.
_MODEL_FAULTS = frozenset({TruncatedOutputError.code, NoSvgError.code})


class ModelsFile(_Strict):
    """The models YAML file: which models to ask, and how to phrase the prompt."""

    prompt_template: str = DEFAULT_TEMPLATE
    system: str | None = None
    models: tuple[ModelSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> ModelsFile:
        if "{prompt}" not in self.prompt_template:
            raise ValueError("prompt_template must contain '{prompt}'")
        names = [m.name for m in self.models]
        if duplicates := sorted({n for n in names if names.count(n) > 1}):
            raise ValueError(f"model names must be unique (they are folder names): {', '.join(duplicates)}")
        return self

    def prompt_text(self, prompt: str) -> str:
        return self.prompt_template.replace("{prompt}", prompt)


def load_models(path: Path) -> ModelsFile:
    raw = read_yaml(path, "models file")
    try:
        return ModelsFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid models file {path}: {describe(exc)}") from None


def load_prompts(path: Path) -> tuple[str, ...]:
    """A prompt set: ``.txt`` with one prompt per line (``#`` comments), or YAML (a list, or ``prompts:`` list)."""
    if path.suffix.lower() in (".yaml", ".yml"):
        raw = read_yaml(path, "prompt set")
        raw = raw.get("prompts") if isinstance(raw, dict) else raw
        if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
            raise ConfigError(f"prompt set {path}: expected a list of strings (or 'prompts:' with one)")
        prompts = [p.strip() for p in raw if p.strip()]
    else:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"cannot read prompt set {path}: {exc.strerror}") from None
        prompts = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not prompts:
        raise ConfigError(f"prompt set {path} has no prompts")
    if duplicates := sorted({p for p in prompts if prompts.count(p) > 1}):
        raise ConfigError(f"prompt set {path} repeats {duplicates[0]!r}")
    return tuple(prompts)


def slugify(prompt: str) -> str:
    """A prompt's folder name: lowercase ASCII words joined by '-', at most 60 characters."""
    ascii_text = unicodedata.normalize("NFKD", prompt).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")[:60].rstrip("-") or "prompt"


@dataclass(frozen=True)
class Job:
    """One sample to make: a model, a prompt and the sample's number."""

    model: ModelSpec
    prompt: str
    sample: int

    @property
    def stem(self) -> str:
        """Where the sample's files go, relative to the output folder, without suffix."""
        return f"{self.model.name}/{slugify(self.prompt)}/{self.sample:02d}"

    @property
    def seed(self) -> int | None:
        # Each sample its own seed, so N samples at a fixed seed are N different drawings.
        return None if self.model.seed is None else self.model.seed + self.sample


def plan(models_file: ModelsFile, prompts: Sequence[str], samples: int, only: Sequence[str] = ()) -> list[Job]:
    """Every (model, prompt, sample), prompt by prompt so concurrent requests spread over models."""
    models = [m for m in models_file.models if not only or m.name in only]
    if unknown := sorted(set(only) - {m.name for m in models_file.models}):
        raise UsageError(f"no model named {', '.join(unknown)} in the models file")
    slugs: dict[str, str] = {}
    for prompt in prompts:
        other = slugs.setdefault(slugify(prompt), prompt)
        if other != prompt:
            raise ConfigError(f"prompts {other!r} and {prompt!r} would share the folder {slugify(prompt)!r}; reword one")
    return [Job(m, p, s) for p in prompts for s in range(samples) for m in models]


@dataclass
class RunSummary:
    rows: list[dict[str, Any]] = field(default_factory=list)  # every sample's row, in plan order
    made: int = 0
    skipped: int = 0
    changed: int = 0  # skipped samples made with other request settings than this run's

    @property
    def outcomes(self) -> Counter[str]:
        return Counter(row["error_code"] or "ok" for row in self.rows)

    @property
    def request_failures(self) -> int:
        """Samples a rerun would ask for again."""
        return sum(1 for row in self.rows if row["error_code"] and row["error_code"] not in _MODEL_FAULTS)


# (row, samples made so far, samples to make); called once with no row before the first request.
OnSample = Callable[[dict[str, Any] | None, int, int], None]


def generate(
    models_file: ModelsFile,
    jobs: Sequence[Job],
    out: Path,
    options: RunOptions = RunOptions(),  # noqa: B008  (frozen: safe as a default)
    *,
    environ: Mapping[str, str] = os.environ,
    on_sample: OnSample | None = None,
) -> RunSummary:
    """Make every job's sample not already done under ``out``; write the manifest (also when interrupted)."""
    keys = api_keys(list({j.model.name: j.model for j in jobs}.values()), environ)
    secrets = secrets_of(keys.values())
    rows: dict[str, dict[str, Any]] = {}  # by stem (model specs hold dicts: not hashable)
    todo = []
    summary = RunSummary()
    for job in jobs:
        row = _done(out, job)
        if row is None:
            todo.append(job)
            continue
        rows[job.stem] = row
        summary.skipped += 1
        summary.changed += any(row.get(k) != v for k, v in _settings(models_file, job).items())

    def finished(job: Job, attempt: Attempt) -> None:
        rows[job.stem] = _record(models_file, job, attempt, out, secrets)
        summary.made += 1
        if on_sample is not None:
            on_sample(rows[job.stem], summary.made, len(todo))

    try:
        if todo:
            if on_sample is not None:
                on_sample(None, 0, len(todo))
            run_sync(_ask_all(models_file, todo, keys, options, finished))
    finally:
        summary.rows = [rows[j.stem] for j in jobs if j.stem in rows]
        out.mkdir(parents=True, exist_ok=True)
        _write(out / MANIFEST, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in summary.rows).encode(), secrets)
    return summary


def _done(out: Path, job: Job) -> dict[str, Any] | None:
    """The row of a sample a previous run finished, or None if it must be (re)made."""
    try:
        row = json.loads((out / f"{job.stem}.meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(row, dict) or not isinstance(row.get("path"), str):
        return None
    if not row.get("error_code"):
        return row if (out / row["path"]).is_file() else None
    return row if row["error_code"] in _MODEL_FAULTS else None


def _settings(models_file: ModelsFile, job: Job) -> dict[str, Any]:
    """What a sample was asked with, as its row records it; a rerun with other values keeps (and counts) it."""
    spec = job.model
    return {
        "kind": spec.kind,
        "model_id": spec.model,
        "temperature": spec.temperature,
        "max_tokens": spec.max_tokens,
        "seed": job.seed,
        "system": models_file.system,
        "prompt_text": models_file.prompt_text(job.prompt),
    }


# -- HTTP ---------------------------------------------------------------------------------


async def _ask_all(
    models_file: ModelsFile, jobs: Sequence[Job], keys: Mapping[str, str | None], options: RunOptions, finished: Callable[[Job, Attempt], None]
) -> None:
    requests = [
        build_request(job.model, models_file.prompt_text(job.prompt), system=models_file.system, seed=job.seed, api_key=keys[job.model.name])
        for job in jobs
    ]
    await ask_each(requests, options, secrets_of(keys.values()), lambda index, attempt: finished(jobs[index], attempt))


# -- Files --------------------------------------------------------------------------------


def _record(models_file: ModelsFile, job: Job, attempt: Attempt, out: Path, secrets: Sequence[str]) -> dict[str, Any]:
    """Extract the SVG, write the sample's files, and return its manifest row."""
    folder = (out / job.stem).parent
    folder.mkdir(parents=True, exist_ok=True)
    response = None
    if attempt.body is not None:
        suffix = ".response.json" if _is_json(attempt.body) else ".response.txt"
        response = f"{job.stem}{suffix}"
        _write(out / response, attempt.body, secrets)
        other = ".response.txt" if suffix == ".response.json" else ".response.json"
        (out / f"{job.stem}{other}").unlink(missing_ok=True)  # from an earlier attempt at this sample
    error: ItemError | None = attempt.error
    reply, note = None, None
    if error is None:
        assert attempt.body is not None
        try:
            reply = parse_reply(job.model.kind, attempt.body)
            extraction = extract_svg(reply.text, truncated=reply.truncated)
            _write(out / f"{job.stem}.svg", extraction.svg.encode("utf-8"), secrets)
            note = extraction.note
        except ItemError as exc:
            error = exc
    if error is not None:
        (out / f"{job.stem}.svg").unlink(missing_ok=True)  # never leave an SVG the row says is not there
    row = {
        "path": f"{job.stem}.svg",
        "prompt": job.prompt,
        "model": job.model.name,
        "sample": job.sample,
        "status": "ok" if error is None else "error",
        # Flat columns, so the manifest also reads as CSV (and `score --manifest` reports the error).
        "error_code": None if error is None else error.code,
        "error_message": None if error is None else error.message,
        "note": note,
        **_settings(models_file, job),
        "latency_s": None if attempt.latency_s is None else round(attempt.latency_s, 3),
        "attempts": attempt.attempts,
        "input_tokens": reply.input_tokens if reply else None,
        "output_tokens": reply.output_tokens if reply else None,
        "stop_reason": reply.stop_reason if reply else None,
        "response": response,
        "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    _write(out / f"{job.stem}.meta.json", (json.dumps(row, ensure_ascii=False, indent=1) + "\n").encode(), secrets)
    return row


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False
    return True


def _write(path: Path, data: bytes, secrets: Sequence[str]) -> None:
    """Every file a run writes passes here: keys redacted, and written whole (temp file, then rename)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(redact(data, secrets))
    os.replace(partial, path)
