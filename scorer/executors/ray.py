"""Scoring on a Ray cluster: ``svgscore score --executor ray`` and :func:`score_dataset`.

The stages of a local run, as Ray Data operators, calling the functions :class:`~scorer.Scorer`
calls (``scorer.api``), so a record made here is the record a local run makes:

1. **per file** — Ray tasks, one CPU each, ``ray.batch_size`` files per task: read the bytes, then
   load, render and the per-file measures in svgscore's isolated worker process
   (:mod:`scorer.isolation`, time and memory limits, no network), one per Ray worker process and
   reused by its later tasks. A file that hangs, blows memory or crashes the renderer kills that
   worker subprocess, never the Ray worker: one error row, as locally.
2. **per batched measure** (CLIP, model judges) — an actor pool, one model per actor, on GPUs when
   the cluster has them (the config's ``ray.measures``).
3. **records** — each file's components combined into its record, at the end of the last stage
   (the per-file task when the config has no batched measure, else the last measure's actor).

Ray retries a task whose worker process died and restarts a dead actor, retrying its call; a
stage's output counts only once its task succeeded, so each file is scored exactly once.

Rows in: ``path`` (a file read on the worker; a relative path resolves against ``base_dir``) or
``svg`` (the document, text or bytes) with ``id`` naming it, and ``prompt`` (default: the default
prompt). Optional ``error_code`` and ``error_message``: a sample with no SVG (a manifest's failed
rows) becomes that error row. Rows out (:data:`OUTPUT_COLUMNS`): ``record``, the whole record as
JSON — the line a local ``-o results.jsonl`` writes — and, for querying, its ``path``
(the row's path as written, else its id), ``sha256``, ``prompt``, ``status``, ``score`` and
``error_code``. Output order is not input order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pickle
import sys
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..api import (
    ConfigSource,
    analysis_pool,
    batched_provenance,
    load_batched,
    make_provenance,
    make_result,
    measure_batch,
    require_available,
)
from ..config import DEFAULT_PROMPT, Config, RayActors, load_config
from ..errors import ConfigError, UsageError, item_error_for
from ..inputs import FileBytes, ScoreItem
from ..isolation import WorkerPool
from ..measure.bind import Overrides, Plan, bind
from ..measure.registry import BatchItem, MeasureUnavailable, resolve_plugin
from ..pipeline import Analysis, FileTask
from ..record import Provenance, ResultKey, ScoreResult
from ..version import source_sha256

if TYPE_CHECKING:
    import ray.data

INSTALL_HINT = "the Ray executor needs Ray: pip install 'svgscore[ray]'"
OUTPUT_SCHEMA = pa.schema(
    [
        ("path", pa.string()),
        ("sha256", pa.string()),
        ("prompt", pa.string()),
        ("status", pa.string()),
        ("score", pa.float64()),
        ("error_code", pa.string()),
        ("record", pa.string()),
    ]
)
OUTPUT_COLUMNS = tuple(OUTPUT_SCHEMA.names)
_ANALYSED_SCHEMA = pa.schema([("path", pa.string()), ("sha256", pa.string()), ("prompt", pa.string()), ("outcome", pa.binary())])


def require_ray() -> Any:
    """The ``ray`` module with Ray Data, or a :class:`UsageError` saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401  (the executor is Ray Data: without it Ray alone is no use)
    except ImportError:
        raise UsageError(INSTALL_HINT) from None
    return ray


def connect(address: str | None = None) -> Any:
    """Join the cluster at ``address`` (``auto``, ``ray://host:10001``...), else ``$RAY_ADDRESS``,
    else start one on this machine; a cluster this process already joined is used as it is."""
    ray = require_ray()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    return ray


@dataclasses.dataclass(frozen=True)
class Job:
    """What every stage needs, shipped to tasks and actors: the config, never a model."""

    config: Config
    overrides: dict[str, dict[str, Any]]
    import_path: tuple[str, ...]  # the driver's sys.path: plugins it imports import on workers too
    base_dir: str  # relative ``path`` rows resolve here
    skip: Any  # ObjectRef of frozenset[ResultKey]: records the output already holds (a resumed run)
    key: str  # the same for jobs that score alike (see _job_key): worker caches are kept by it


def _job_key(config: Config, overrides: Overrides, import_path: Sequence[str], plan: Plan) -> str:
    """Equal for jobs whose workers would be set up the same: such a job reuses the last one's
    plan, provenance and isolated worker (an edit of svgscore's or a plugin's source sets up anew)."""
    setup = [config.model_dump(mode="json"), config.name, config.base_dir, overrides, list(import_path), plan.sha256, source_sha256()]
    return hashlib.sha256(json.dumps(setup, sort_keys=True, default=str).encode()).hexdigest()


# Per Ray worker process: the bound plan, the provenance and the isolated pool of the job setup
# it last ran, and the skip set of the job it last ran. Another setup replaces them.
_state: dict[str, Any] = {"key": None, "skip_ref": None, "skip": frozenset()}


def _job_state(job: Job) -> dict[str, Any]:
    if _state["key"] != job.key:
        pool: WorkerPool[FileTask, Analysis] | None = _state.get("pool")
        if pool is not None:
            pool.close()
        sys.path.extend(p for p in job.import_path if p not in sys.path)
        _state.update(key=job.key, plan=bind(job.config, job.overrides), provenance={}, pool=None)
    skip_ref = None if job.skip is None else job.skip.hex()
    if _state["skip_ref"] != skip_ref:
        _state.update(skip_ref=skip_ref, skip=frozenset() if job.skip is None else _ray().get(job.skip))
    return _state


def _ray() -> Any:
    import ray

    return ray


def _plan(job: Job) -> Plan:
    return _job_state(job)["plan"]


def _pool(job: Job) -> WorkerPool[FileTask, Analysis]:
    state = _job_state(job)
    if state["pool"] is None:
        # One isolated worker per task: the task holds one CPU, and the worker is what uses it.
        state["pool"] = analysis_pool(job.config, job.overrides, jobs=1)
    return state["pool"]


def _item(row: dict[str, Any], job: Job) -> tuple[str | None, ScoreItem]:
    """The record's path and the item to read, for one input row."""
    prompt = row.get("prompt") or DEFAULT_PROMPT
    svg, path, name = row.get("svg"), row.get("path"), row.get("id")
    error = item_error_for(row["error_code"], row.get("error_message") or row["error_code"]) if row.get("error_code") else None
    if svg is not None:
        data = svg.encode("utf-8") if isinstance(svg, str) else bytes(svg)
        return (None if name is None else str(name)), ScoreItem(path=None, prompt=prompt, data=data, error=error)
    if path is None:
        return (None if name is None else str(name)), ScoreItem(path=None, prompt=prompt, error=error or item_error_for("read_error", "row has neither svg nor path"))
    return str(path), ScoreItem(path=os.path.join(job.base_dir, str(path)), prompt=prompt, error=error)


def analyse(batch: pa.Table, job: Job, *, finish: bool = False) -> pa.Table:
    """Stage 1 for a batch of input rows: each file read and analysed in the isolated worker;
    ``finish``: and made into records at once (no batched measure to wait for)."""
    state = _job_state(job)
    entries: list[tuple[str | None, ScoreItem, FileBytes]] = []
    for row in batch.to_pylist():
        path, item = _item(row, job)
        file = item.read(job.config.limits)
        if (path, file.sha256, item.prompt) not in state["skip"]:
            entries.append((path, item, file))
    tasks = [FileTask(file.data, item.prompt) for _, item, file in entries if file.error is None]
    analysed = iter(_pool(job).imap(tasks) if tasks else ())
    outcomes = [file.error if file.error is not None else next(analysed) for _, _, file in entries]
    columns = (
        [path for path, _, _ in entries],
        [file.sha256 for _, _, file in entries],
        [item.prompt for _, item, _ in entries],
        [pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL) for outcome in outcomes],
    )
    analysed_table = pa.Table.from_arrays([pa.array(c, t.type) for c, t in zip(columns, _ANALYSED_SCHEMA, strict=True)], schema=_ANALYSED_SCHEMA)
    return records(analysed_table, job) if finish else analysed_table


def _probe(job: Job, name: str) -> dict[str, Any]:
    """A batched measure's provenance entry, loaded where its actors would load it."""
    loaded = load_batched(_plan(job).measures[name])
    if callable(close := getattr(loaded, "close", None)):
        close()
    return batched_provenance(loaded)


class BatchedMeasure:
    """Stage 2 as a Ray actor: one batched measure's model, loaded once, on the analysed files."""

    def __init__(self, job: Job, name: str, finish: bool) -> None:
        self.job, self.name, self.finish = job, name, finish  # finish: the last stage, making the records
        self.bound = _plan(job).measures[name]
        self.loaded = load_batched(self.bound)
        self.entry = json.dumps(batched_provenance(self.loaded), sort_keys=True)

    def __del__(self) -> None:
        # Ray Data deletes the UDF when it retires the actor: close what the measure holds (a
        # judge's HTTP client and answer cache), as Scorer.close() does.
        if callable(close := getattr(getattr(self, "loaded", None), "close", None)):
            close()

    def __call__(self, batch: pa.Table) -> pa.Table:
        loaded = require_available(self.bound, self.loaded)  # the probe loaded it, this actor cannot: the job fails
        outcomes = [pickle.loads(b) for b in batch.column("outcome").to_pylist()]
        prompts = batch.column("prompt").to_pylist()
        items = [BatchItem(o.image, p, o.render.sha256) for o, p in zip(outcomes, prompts, strict=True) if isinstance(o, Analysis)]
        values = iter(measure_batch(self.bound, loaded, items) if items else ())
        measured = [pickle.dumps(next(values)) if isinstance(o, Analysis) else b"" for o in outcomes]
        batch = batch.append_column(pa.field(f"measured:{self.name}", pa.binary()), pa.array(measured, pa.binary()))
        batch = batch.append_column(pa.field(f"provenance:{self.name}", pa.string()), pa.array([self.entry] * len(outcomes), pa.string()))
        return records(batch, self.job) if self.finish else batch


def records(batch: pa.Table, job: Job) -> pa.Table:
    """Stage 3: each file's record, made by the Scorer's own :func:`~scorer.api.make_result`.
    Cheap, so it runs at the end of the stage before it: a stage of its own would hold a CPU
    slot of its own (Ray Data reserves resources per operator) for next to no work."""
    state, plan = _job_state(job), _plan(job)
    results = []
    for row in batch.to_pylist():
        entries = {b.name: row[f"provenance:{b.name}"] for b in plan.batched}
        found = {b.name: pickle.loads(row[f"measured:{b.name}"]) for b in plan.batched if row[f"measured:{b.name}"]}
        results.append(make_result(plan, job.config, (row["path"], row["sha256"], row["prompt"]), pickle.loads(row["outcome"]), found, _provenance(state, job, entries)))
    return output_table(results)


def _provenance(state: dict[str, Any], job: Job, entries: dict[str, str]) -> Provenance:
    """Computed where the records are made (this worker's renderer and platform), once per job."""
    key = json.dumps(entries, sort_keys=True)
    if key not in state["provenance"]:
        state["provenance"][key] = make_provenance(job.config, state["plan"], {name: json.loads(e) for name, e in entries.items()})
    return state["provenance"][key]


def output_table(results: Sequence[ScoreResult]) -> pa.Table:
    columns = {
        "path": [r.path for r in results],
        "sha256": [r.sha256 for r in results],
        "prompt": [r.prompt for r in results],
        "status": [r.status for r in results],
        "score": [r.score for r in results],
        "error_code": [r.error.code if r.error else None for r in results],
        "record": [json.dumps(r.to_dict(), ensure_ascii=False) for r in results],
    }
    return pa.table(columns, schema=OUTPUT_SCHEMA)


def score_dataset(
    dataset: ray.data.Dataset,
    config: ConfigSource = None,
    *,
    params: Overrides | None = None,
    plugins: Sequence[str] = (),
    skip: Collection[ResultKey] = (),
    base_dir: str | os.PathLike[str] | None = None,
) -> ray.data.Dataset:
    """Records for the rows of ``dataset`` (see the module's doc), computed lazily by Ray Data.

    ``config``, ``params`` and ``plugins`` as for :class:`~scorer.Scorer`; the config's ``ray:``
    section says how to run (files per task; per batched measure: actors, GPUs and CPUs per
    actor, files per call). ``skip``: the :attr:`ScoreResult.key` of records already made by this
    judge (resuming): those files are read, not scored. ``base_dir``: where relative paths
    resolve [default: the current folder].
    """
    ray = require_ray()
    loaded = load_config(config).with_plugins(resolve_plugin(p, os.getcwd()) for p in plugins)
    overrides = {name: dict(values) for name, values in (params or {}).items()}
    plan = bind(loaded, overrides)  # unknown measures, bad params: ConfigError here, before any task
    settings = loaded.ray
    batched = [b.name for b in plan.batched]
    unknown = sorted(set(settings.measures) - set(batched))
    if unknown:
        raise ConfigError(f"ray.measures names {', '.join(unknown)}: not batched measures of this config (batched: {', '.join(batched) or 'none'})")
    import_path = tuple(sys.path)
    job = Job(
        loaded,
        overrides,
        import_path,
        str(Path(base_dir or os.getcwd()).resolve()),
        ray.put(frozenset(skip)) if skip else None,
        _job_key(loaded, overrides, import_path, plan),
    )
    dataset = dataset.map_batches(
        analyse,
        fn_kwargs={"job": job, "finish": not batched},
        batch_size=settings.batch_size,
        batch_format="pyarrow",
        num_cpus=1,
        # Ray Data fuses a task stage into the next actor stage when their resources agree: the
        # per-file work would then run inside a model's few actors. A remote-args function is
        # never fused, so it stays in tasks spread over every CPU.
        ray_remote_args_fn=_per_file_args,
    )
    has_gpus = ray.cluster_resources().get("GPU", 0) > 0
    for name in batched:
        actors = settings.measures.get(name) or RayActors()
        resources = {"num_cpus": actors.num_cpus, "num_gpus": (1 if has_gpus else 0) if actors.num_gpus is None else actors.num_gpus}
        bound = plan.measures[name]
        if bound.required:
            # Required but unable to load where its actors run: stop now, as a local run does
            # (exit 2, nothing written), not with a failed task once files are flowing.
            entry = ray.get(ray.remote(_probe).options(**resources).remote(job, name))
            if not entry["available"]:
                require_available(bound, MeasureUnavailable(entry["reason"]))
        dataset = dataset.map_batches(
            BatchedMeasure,
            fn_constructor_kwargs={"job": job, "name": name, "finish": name == batched[-1]},
            batch_size=actors.batch_size,
            batch_format="pyarrow",
            concurrency=actors.actors,
            **resources,
        )
    return dataset


def _per_file_args() -> dict[str, Any]:
    return {"num_cpus": 1}


def input_rows(items: Iterable[ScoreItem]) -> list[dict[str, Any]]:
    """Rows for :func:`score_dataset` from the items local discovery finds (directories, a
    manifest: :func:`~scorer.inputs.discover`), with the same paths and prompts."""
    return [
        {
            "path": item.path,
            "prompt": item.prompt,
            "error_code": item.error.code if item.error else None,
            "error_message": item.error.message if item.error else None,
        }
        for item in items
    ]


def read_rows(path: str | os.PathLike[str]) -> ray.data.Dataset:
    """A Parquet file or folder, or a JSONL file, of rows ``id, svg or path, prompt``."""
    ray = require_ray()
    path = Path(path)
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return ray.data.read_json(str(path), lines=True)
    if path.suffix.lower() == ".parquet" or path.is_dir():
        return ray.data.read_parquet(str(path))
    raise UsageError(f"{path}: rows are read from .parquet (file or folder) or .jsonl")


def results(dataset: ray.data.Dataset) -> Iterator[ScoreResult]:
    """The records of :func:`score_dataset`'s output, streamed to this process as they finish."""
    for row in dataset.iter_rows():
        yield ScoreResult.from_dict(json.loads(row["record"]))


def read_records(path: str | os.PathLike[str]) -> list[ScoreResult]:
    """The records of an output folder of Parquet files (``write_parquet``), for resuming it: a
    file a killed job left half-written is unreadable; it is removed and its files scored again."""
    import pyarrow.parquet as pq

    found: list[ScoreResult] = []
    for file in sorted(Path(path).glob("*.parquet")) if Path(path).is_dir() else ():
        try:
            column = pq.read_table(file, columns=["record"]).column("record").to_pylist()
        except (OSError, pa.ArrowException):
            file.unlink()
            continue
        found.extend(ScoreResult.from_dict(json.loads(text)) for text in column)
    return found
