"""The Ray executor (scorer.executors.ray) on a small Ray cluster started here (2 CPUs): the same
records as a local run, hostile files bounded and isolated, a killed actor and a killed worker
process costing nothing, resuming, and the CLI's ``--executor ray``.

Nothing here waits on a clock: the fault test kills when a process announces itself in a file;
time limits are hang guards only.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest
import ray
import ray.data
from click.testing import CliRunner

from scorer import ScoreItem, Scorer
from scorer.cli import main
from scorer.config import load_config
from scorer.errors import item_error_for
from scorer.executors import ray as on_ray
from scorer.inputs import discover

from .conftest import BROKEN, FIXTURES, LADDER
from .ray_plugin import HAZARDS, KILL
from .test_hostile import EXPECTED, HOSTILE_FILES
from .tiny_clip import build_tiny_clip

PLUGIN = str(Path(__file__).with_name("ray_plugin.py"))
PROMPT = "a pelican riding a bicycle"
STRUCTURAL = {name: check.model_dump() for name, check in load_config("structural").checks.items()}
INLINE = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100"><circle cx="50" cy="50" r="30" fill="#c33"/></svg>'
HANG_GUARD_S = 240.0


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


def ray_records(rows, config, **kwargs):
    return list(on_ray.results(on_ray.score_dataset(ray.data.from_items(rows), config, **kwargs)))


def by_path(results):
    found = {}
    for result in results:
        assert result.path not in found, f"{result.path} scored twice"
        found[result.path] = result.to_dict()
    return found


def test_records_match_a_local_run_score_for_score(cluster, tmp_path):
    """Per-file checks and a batched measure (a tiny CLIP in an actor), broken and missing files,
    an SVG given inline: every record equal to the local Scorer's, field for field; written as
    Parquet and read back, the same records again."""
    tiny = build_tiny_clip(tmp_path / "clip")
    config = {
        "checks": {**STRUCTURAL, "clip": {"weight": 1.0, "params": tiny.clip_section(batch_size=4)}},
        # Small batches: several tasks and several actor calls, as on a real job.
        "ray": {"batch_size": 3, "measures": {"clip": {"batch_size": 5, "num_cpus": 0}}},
    }
    missing, failed = tmp_path / "gone.svg", tmp_path / "never_made.svg"
    files = [*LADDER, *BROKEN, *sorted((FIXTURES / "other_prompt").glob("*.svg")), missing, failed]
    # `failed`: a manifest row whose generation failed, as `svgscore generate` writes one
    items = list(discover(files, PROMPT, {}, {str(failed.resolve()): item_error_for("no_svg", "the reply held no SVG")}))
    rows = [*on_ray.input_rows(items), {"id": "inline-circle", "svg": INLINE, "prompt": "a red ball"}]

    scored = on_ray.score_dataset(ray.data.from_items(rows), config).materialize()
    remote = by_path(on_ray.results(scored))
    with Scorer(config, jobs=2) as scorer:
        local = by_path([*scorer.score_items(items), scorer.score_svg(INLINE, "a red ball", path="inline-circle")])

    assert sorted(remote) == sorted(local) and len(local) == len(files) + 1
    for path, record in local.items():
        assert remote[path] == record, path
    assert remote[str(missing)]["error"]["code"] == "read_error"
    assert remote[str(failed)]["error"] == {"code": "no_svg", "message": "the reply held no SVG"}
    assert {r["components"]["clip"]["value"] is not None for r in local.values() if r["status"] == "ok"} == {True}

    scored.write_parquet(str(tmp_path / "out.parquet"))
    (tmp_path / "out.parquet" / "killed_mid_write.parquet").write_bytes(b"PAR1\x00half")  # what a killed writer leaves
    assert by_path(on_ray.read_records(tmp_path / "out.parquet")) == remote
    assert not (tmp_path / "out.parquet" / "killed_mid_write.parquet").exists()


def test_hostile_files_and_hazards_cost_one_error_row_each(cluster):
    """fixtures/hostile/ through Ray, plus files that hang their worker, eat all its memory or
    crash it: one record each with the outcome the local tests expect, and the job completes."""
    config = {"checks": {**STRUCTURAL, "hazard": {"weight": 0.0}}, "plugins": [PLUGIN], "render": {"timeout_s": 10}, "ray": {"batch_size": 4}}
    hazards = [{"id": f"hazard-{name}", "svg": INLINE, "prompt": prompt} for name, prompt in HAZARDS.items()]
    rows = [*on_ray.input_rows(discover(HOSTILE_FILES, PROMPT, {})), *hazards]

    found = by_path(ray_records(rows, config))

    assert sorted(found) == sorted([str(p) for p in HOSTILE_FILES] + [h["id"] for h in hazards])
    for path in HOSTILE_FILES:
        record = found[str(path)]
        assert (record["error"] or {}).get("code", "ok") in EXPECTED[path.name], (path.name, record["summary"])
    assert found["hazard-hang"]["error"]["code"] == "render_timeout"
    assert found["hazard-memory"]["error"]["message"].startswith("out of memory")
    assert found["hazard-crash"]["error"]["message"].startswith("worker process died twice")


class Killer(threading.Thread):
    """Kills each process the test measures announce (``<what>.pid`` in ``folder``), in order."""

    def __init__(self, folder: Path, order: tuple[str, ...]) -> None:
        super().__init__(daemon=True)
        self.folder, self.order = folder, order
        self.killed: dict[str, int] = {}

    def run(self) -> None:
        deadline = time.monotonic() + HANG_GUARD_S
        for what in self.order:
            announced = self.folder / f"{what}.pid"
            while not announced.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            if not announced.exists():
                return
            pid = int(announced.read_text())
            os.kill(pid, signal.SIGKILL)
            self.killed[what] = pid


def test_a_killed_worker_process_and_actor_lose_nothing(cluster, tmp_path):
    """Mid-run, the Ray worker process analysing a file and the actor measuring a batch are each
    killed with SIGKILL (when they announce themselves, mid-task). Ray retries the task and
    restarts the actor: every file is scored exactly once, and the records equal a local run's."""
    signals = tmp_path / "signals"
    signals.mkdir()
    params = {"params": {"signal_dir": str(signals)}}
    config = {
        "plugins": [PLUGIN],
        "checks": {"parses": {"weight": 1.0}, "not_blank": {"weight": 1.0}, "stall_worker": {"weight": 1.0, **params}, "stall_actor": {"weight": 1.0, **params}},
        "render": {"timeout_s": HANG_GUARD_S},  # the stalled file must wait for its kill, not time out
        "ray": {"batch_size": 2, "measures": {"stall_actor": {"batch_size": 3, "num_cpus": 0}}},
    }
    items = [ScoreItem(path=str(p), prompt=KILL if i in (2, 5) else PROMPT) for i, p in enumerate(LADDER)]
    killer = Killer(signals, ("worker", "actor"))
    killer.start()

    remote = by_path(ray_records(on_ray.input_rows(items), config))
    killer.join(timeout=HANG_GUARD_S)

    assert set(killer.killed) == {"worker", "actor"}, "a measure never announced itself: nothing was killed"
    for pid in killer.killed.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with Scorer(config, jobs=2) as scorer:  # claims taken: locally nothing stalls
        local = by_path(scorer.score_items(items))
    assert sorted(remote) == sorted(str(p) for p in LADDER)
    assert remote == local


def test_cli_ray_run_resumes_where_a_killed_run_stopped(cluster, tmp_path):
    """``svgscore score --executor ray -o FILE.jsonl``, then the same run as a kill leaves it (a
    few records and half a line) resumed with ``--resume``: the records kept are not scored again,
    the rest are, and the file ends with the full run's records, once each."""
    args = ["score", *map(str, LADDER), "--config", "structural", "--executor", "ray"]
    runner = CliRunner()
    full = runner.invoke(main, [*args, "-o", str(tmp_path / "full.jsonl")])
    assert full.exit_code == 0, full.output
    lines = (tmp_path / "full.jsonl").read_text().splitlines(keepends=True)
    assert len(lines) == len(LADDER)

    out = tmp_path / "run.jsonl"
    out.write_text("".join(lines[:4]) + '{"path": "half-writ')
    resumed = runner.invoke(main, [*args, "-o", str(out), "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "resume: 4 records kept, 4 of them made by this judge" in resumed.output
    after = out.read_text().splitlines(keepends=True)
    assert after[:4] == lines[:4]  # kept as they were
    assert sorted(after) == sorted(lines)  # the rest scored, none twice
    assert [json.loads(line)["path"] for line in after].count(str(LADDER[0])) == 1


def test_cli_rows_file_and_a_required_measure_unavailable_on_the_cluster(cluster, tmp_path):
    """``--rows`` reads JSONL rows (inline SVG, a path relative to the rows file); a required
    batched measure that cannot load in its actor stops the run with exit 2, as locally."""
    (tmp_path / "a.svg").write_text(INLINE)
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"id": "x", "svg": INLINE, "prompt": "a red ball"}) + "\n" + json.dumps({"path": "a.svg", "prompt": "a red ball"}) + "\n")
    ok = CliRunner().invoke(main, ["score", "--rows", str(rows), "--config", "structural", "--executor", "ray", "--format", "jsonl"])
    assert ok.exit_code == 0, ok.output
    records = [json.loads(line) for line in ok.stdout.splitlines() if line.startswith("{")]
    assert sorted((r["path"], r["status"]) for r in records) == [("a.svg", "ok"), ("x", "ok")]
    assert len({r["sha256"] for r in records}) == 1  # the same document, inline and from the file

    config = tmp_path / "required.yaml"
    config.write_text(f"checks:\n  parses: {{weight: 1}}\n  clip: {{weight: 1, required: true, params: {{weights: {tmp_path / 'no.pt'}, pretrained: null}}}}\n")
    refused = CliRunner().invoke(main, ["score", str(tmp_path / "a.svg"), "--config", str(config), "--executor", "ray"])
    assert refused.exit_code == 2, refused.output
    assert "required by the config but unavailable" in refused.output


def test_without_ray_the_executor_says_how_to_install_it(monkeypatch):
    for module in ("ray", "ray.data"):
        monkeypatch.setitem(sys.modules, module, None)  # `import ray` now fails as if not installed
    result = CliRunner().invoke(main, ["score", str(LADDER[0]), "--config", "structural", "--executor", "ray"])
    assert result.exit_code == 2
    assert "pip install 'svgscore[ray]'" in result.output
