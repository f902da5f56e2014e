"""``svgscore generate`` over a bad network (the fake chat API on 127.0.0.1, tests/fake_llm.py):
connection resets, bodies cut short or stalled, slow bodies, bursts of 5xx and 429. Nothing is lost:
every sample gets a row, a transient fault is retried within the run, and a rerun asks again for
exactly the samples whose requests failed for good — and counts them right."""

from __future__ import annotations

import json

import pytest

from scorer.harness.generate import MANIFEST, RunOptions

from .fake_llm import PELICAN, FakeLLM
from .test_generate import _loopback_only, manifest, run  # noqa: F401  (the loopback guard is autouse)

# Generous against a busy machine: only [stall] (a 3 s pause) must outlast the timeout.
OPTIONS = RunOptions(concurrency=4, timeout_s=1.5, retries=3, retry_delay_s=0.001)
TRANSIENT = ["[reset]", "[partial]", "[stall]", "[burst]", "[trickle]"]


@pytest.fixture
def server():
    fake = FakeLLM().start()
    yield fake
    fake.stop()


def test_transient_faults_are_retried_within_the_run(tmp_path, server):
    prompts = [f"a pelican {marker}" for marker in TRANSIENT]
    summary = run(tmp_path, server, prompts, options=OPTIONS)
    rows = manifest(tmp_path)
    assert rows == summary.rows and len(rows) == 2 * len(TRANSIENT)  # two models each
    assert summary.outcomes == {"ok": len(rows)}
    for row in rows:
        assert (tmp_path / "out" / row["path"]).read_text() == PELICAN
        json.loads((tmp_path / "out" / row["response"]).read_text())  # the body kept whole, not the cut one
        marker = row["prompt"].split()[-1]
        assert row["attempts"] == {"[burst]": 4, "[trickle]": 1}.get(marker, 2), row


def test_lasting_faults_are_rows_and_a_rerun_asks_again_for_exactly_those(tmp_path, server):
    prompts = ["a pelican", "a fox [alwaysreset]", "an owl [always503]", "a cat [malformed]", "a dog [nosvg]", "a hen [burst]"]
    first = run(tmp_path, server, prompts, samples=2, options=OPTIONS)
    rows = manifest(tmp_path)
    assert len(rows) == 24 and first.made == 24  # 6 prompts × 2 samples × 2 models: nothing lost
    assert first.outcomes == {"ok": 8, "request_failed": 8, "malformed_response": 4, "no_svg": 4}
    assert first.request_failures == 12
    resets = {r["path"] for r in rows if "[alwaysreset]" in r["prompt"]}
    assert all(r["error_code"] == "request_failed" and "after 4 attempts" in r["error_message"] for r in rows if r["path"] in resets)
    asked = len(server.requests)

    again = run(tmp_path, server, prompts, samples=2, options=OPTIONS)
    assert again.skipped == 12 and again.made == 12  # the done samples (ok and the model's refusals) are kept
    assert again.outcomes == first.outcomes and again.request_failures == 12  # the lasting faults last
    # Only the failed samples were asked again: a malformed 200 once each (not retried within a run),
    # the resets and 503s once plus every retry.
    assert len(server.requests) - asked == 4 + 8 * (OPTIONS.retries + 1)
    kept = {r["path"]: r for r in rows if r["status"] == "ok" or r["error_code"] == "no_svg"}
    assert {r["path"]: r for r in manifest(tmp_path) if r["path"] in kept} == kept  # untouched, byte for byte
    assert (tmp_path / "out" / MANIFEST).read_text().count("\n") == 24
