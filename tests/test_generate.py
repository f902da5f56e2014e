"""svgscore generate against a real HTTP server on 127.0.0.1 speaking both chat APIs."""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import yaml
from click.testing import CliRunner

from scorer.cli import main
from scorer.errors import ConfigError, UsageError
from scorer.harness.generate import MANIFEST, RunOptions, generate, load_models, load_prompts, plan, slugify
from scorer.harness.transport import retry_after as _retry_after

from .conftest import REPO
from .fake_llm import PELICAN, FakeLLM

# A generous timeout: on a loaded machine a healthy reply must never look like a timeout (the
# timeout test sets its own short one against a server that does not answer at all).
FAST = RunOptions(concurrency=4, timeout_s=30, retries=1, retry_delay_s=0.001)
SECRET = "sk-test-0123456789-do-not-leak"


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    """Nothing in these tests may reach another host: connections elsewhere are refused and reported."""
    elsewhere = []
    connect = socket.socket.connect

    def guarded(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1", "localhost"):
            elsewhere.append(address)
            raise ConnectionRefusedError(f"test guard: {address} is not loopback")
        return connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield elsewhere
    assert not elsewhere, f"tests tried to reach {elsewhere}"


@pytest.fixture
def server():
    fake = FakeLLM().start()
    yield fake
    fake.stop()


def models_yaml(tmp_path: Path, server: FakeLLM, **extra) -> Path:
    spec = {
        "prompt_template": "Generate an SVG of {prompt}",
        "system": "You draw in SVG.",
        "models": [
            {"name": "local", "kind": "openai", "base_url": f"{server.url}/v1", "model": "llama-3", "temperature": 0.5, "max_tokens": 512, "seed": 7},
            {"name": "claude", "kind": "anthropic", "base_url": server.url, "model": "claude-x", "api_key_env": "FAKE_ANTHROPIC_KEY", "max_tokens": 1024},
        ],
        **extra,
    }
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def run(tmp_path, server, prompts, samples=1, options=FAST, only=(), environ=None):
    models_file = load_models(models_yaml(tmp_path, server))
    jobs = plan(models_file, prompts, samples, only)
    return generate(models_file, jobs, tmp_path / "out", options, environ={"FAKE_ANTHROPIC_KEY": SECRET} if environ is None else environ)


def manifest(tmp_path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "out" / MANIFEST).read_text().splitlines()]


# -- both APIs, files, manifest -----------------------------------------------------------


def test_both_apis_give_svgs_raw_replies_and_a_manifest(tmp_path, server):
    summary = run(tmp_path, server, ["a pelican riding a bicycle", "a turtle wearing roller skates"], samples=2)
    out = tmp_path / "out"
    rows = manifest(tmp_path)
    assert rows == summary.rows and len(rows) == 8 and summary.made == 8
    assert [(r["prompt"], r["sample"], r["model"]) for r in rows[:4]] == [
        ("a pelican riding a bicycle", 0, "local"), ("a pelican riding a bicycle", 0, "claude"),
        ("a pelican riding a bicycle", 1, "local"), ("a pelican riding a bicycle", 1, "claude"),
    ]  # fmt: skip
    for row in rows:
        assert row["status"] == "ok" and row["error_code"] is None and row["note"] is None
        assert row["path"] == f"{row['model']}/{slugify(row['prompt'])}/{row['sample']:02d}.svg"
        assert (out / row["path"]).read_text() == PELICAN
        assert row["response"] == row["path"].replace(".svg", ".response.json")
        assert json.loads((out / row["response"]).read_text())["model"] in ("llama-3", "claude-x")
        assert json.loads((out / row["path"].replace(".svg", ".meta.json")).read_text()) == row
        assert isinstance(row["latency_s"], float) and row["attempts"] == 1
        assert row["prompt_text"] == f"Generate an SVG of {row['prompt']}"
    local = [r for r in rows if r["model"] == "local"]
    claude = [r for r in rows if r["model"] == "claude"]
    assert {(r["input_tokens"], r["output_tokens"], r["stop_reason"]) for r in local} == {(19, 321, "stop")}
    assert {(r["input_tokens"], r["output_tokens"], r["stop_reason"]) for r in claude} == {(21, 345, "end_turn")}
    assert {(r["sample"], r["seed"], r["temperature"], r["max_tokens"], r["model_id"]) for r in local} == {(0, 7, 0.5, 512, "llama-3"), (1, 8, 0.5, 512, "llama-3")}
    assert {r["seed"] for r in claude} == {None}


def test_requests_speak_each_api(tmp_path, server):
    run(tmp_path, server, ["a pelican riding a bicycle"])
    by_path = {seen.path: seen for seen in server.requests}
    openai, anthropic = by_path["/v1/chat/completions"], by_path["/v1/messages"]
    assert openai.body == {
        "model": "llama-3", "max_tokens": 512, "temperature": 0.5, "seed": 7,
        "messages": [{"role": "system", "content": "You draw in SVG."}, {"role": "user", "content": "Generate an SVG of a pelican riding a bicycle"}],
    }  # fmt: skip
    assert "authorization" not in openai.headers  # no api_key_env: a local server without keys
    assert anthropic.body == {
        "model": "claude-x", "max_tokens": 1024, "temperature": 1.0, "system": "You draw in SVG.",
        "messages": [{"role": "user", "content": "Generate an SVG of a pelican riding a bicycle"}],
    }  # fmt: skip
    assert anthropic.headers["x-api-key"] == SECRET and anthropic.headers["anthropic-version"] == "2023-06-01"


def test_concurrency_is_limited(tmp_path, server):
    server.delay_s = 0.1
    run(tmp_path, server, [f"subject {i}" for i in range(4)], options=RunOptions(concurrency=2, timeout_s=5, retry_delay_s=0.001))
    assert len(server.requests) == 8 and server.peak_in_flight == 2


# -- resume -------------------------------------------------------------------------------


def test_resume_skips_done_samples_without_a_request(tmp_path, server):
    prompts = ["a pelican riding a bicycle", "a fox [truncated]", "a cat [nosvg]", "an owl [malformed]"]
    first = run(tmp_path, server, prompts, samples=2)
    assert len(server.requests) == 16 and first.made == 16
    again = run(tmp_path, server, prompts, samples=2)
    # Only the malformed replies (the endpoint's fault) are asked again; the model's own failures stand.
    assert len(server.requests) == 16 + 4 and again.made == 4 and again.skipped == 12
    assert manifest(tmp_path) == again.rows and len(again.rows) == 16
    (tmp_path / "out" / "claude" / slugify(prompts[0]) / "01.meta.json").unlink()
    third = run(tmp_path, server, prompts, samples=3)  # one lost sample, and a third sample each
    assert third.made == 4 + 1 + 8 and len(third.rows) == 24
    assert next(r for r in third.rows if r["model"] == "claude" and r["sample"] == 1 and r["prompt"] == prompts[0])["status"] == "ok"


def test_rerun_with_other_settings_keeps_samples_and_says_so(tmp_path, server):
    run(tmp_path, server, ["a pelican riding a bicycle"])
    models_file = load_models(models_yaml(tmp_path, server, prompt_template="Draw {prompt} as SVG"))
    summary = generate(models_file, plan(models_file, ["a pelican riding a bicycle"], 1), tmp_path / "out", FAST, environ={"FAKE_ANTHROPIC_KEY": SECRET})
    assert summary.made == 0 and summary.changed == 2


# -- failures become rows -----------------------------------------------------------------


def test_429_waits_as_long_as_retry_after_says(tmp_path, server):
    started = time.monotonic()
    summary = run(tmp_path, server, ["a pelican [429]"], only=("local",))
    [row] = summary.rows
    assert row["status"] == "ok" and row["attempts"] == 2
    first, second = server.requests
    assert first.body == second.body
    # The first backoff is 1 ms: the pause is the server's Retry-After (0.3 s).
    assert time.monotonic() - started >= 0.3


def test_5xx_is_retried_and_exhausted_retries_are_a_row(tmp_path, server):
    summary = run(tmp_path, server, ["a pelican [503]", "a heron [always503]", "a crane"], options=RunOptions(retries=2, retry_delay_s=0.001, timeout_s=30))
    by_prompt = {(r["prompt"], r["model"]): r for r in summary.rows}
    assert by_prompt[("a pelican [503]", "local")]["status"] == "ok" and by_prompt[("a pelican [503]", "local")]["attempts"] == 2
    failed = by_prompt[("a heron [always503]", "claude")]
    assert failed["error_code"] == "request_failed" and failed["attempts"] == 3
    assert failed["error_message"].startswith("HTTP 503: ") and failed["error_message"].endswith("(after 3 attempts)")
    assert failed["response"].endswith(".response.json") and not (tmp_path / "out" / failed["path"]).exists()
    assert by_prompt[("a crane", "claude")]["status"] == "ok" and summary.request_failures == 2


def test_slow_replies_time_out_and_the_run_goes_on(tmp_path, server):
    server.slow_s = 3600  # it never answers in time (released when the server closes)
    summary = run(tmp_path, server, ["a pelican [slow]", "a heron"], options=RunOptions(timeout_s=2, retries=1, retry_delay_s=0.001), only=("local",))
    slow, fine = summary.rows
    # Two timed-out attempts: the client gave up rather than waiting for the server.
    assert slow["error_code"] == "request_timeout" and slow["attempts"] == 2 and slow["response"] is None
    assert "2 s" in slow["error_message"] and fine["status"] == "ok"


def test_malformed_truncated_and_refused_replies_are_rows(tmp_path, server):
    summary = run(tmp_path, server, ["an owl [malformed]", "a fox [truncated]", "a cat [nosvg]"], only=("local", "claude"))
    codes = {(r["prompt"], r["model"]): r["error_code"] for r in summary.rows}
    assert set(codes.values()) == {"malformed_response", "truncated_output", "no_svg"}
    assert codes[("an owl [malformed]", "claude")] == "malformed_response"
    malformed = summary.rows[0]
    assert malformed["response"].endswith(".response.txt")  # not JSON: kept verbatim, as text
    assert (tmp_path / "out" / malformed["response"]).read_bytes().startswith(b'{"id": "x"')
    truncated = [r for r in summary.rows if r["error_code"] == "truncated_output"]
    assert {r["stop_reason"] for r in truncated} == {"length", "max_tokens"} and all(r["output_tokens"] for r in truncated)
    assert not list((tmp_path / "out").rglob("*.svg"))


def test_non_retryable_status_is_final(tmp_path, server):
    summary = run(tmp_path, server, ["a pelican [401]"], only=("local",))
    assert summary.rows[0]["error_code"] == "request_failed" and summary.rows[0]["attempts"] == 1
    assert len(server.requests) == 1


def test_retry_after_forms():
    assert _retry_after(httpx.Headers({"retry-after": "2"})) == 2.0
    assert _retry_after(httpx.Headers({"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    assert _retry_after(httpx.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0  # in the past
    assert _retry_after(httpx.Headers({"retry-after": "soon"})) is None and _retry_after(httpx.Headers()) is None


def test_a_longer_retry_after_than_allowed_fails_the_sample_at_once(tmp_path, server):
    server.retry_after = "3600"
    summary = run(tmp_path, server, ["a pelican [429]"], only=("local",))
    assert summary.rows[0]["error_code"] == "request_failed" and "asked to wait 3600 s" in summary.rows[0]["error_message"]
    assert len(server.requests) == 1  # not retried: it failed at once instead of waiting an hour


def test_the_loopback_guard_holds(tmp_path, _loopback_only):
    models_file = load_models(models_yaml(tmp_path, SimpleNamespace(url="http://192.0.2.1:9")))  # TEST-NET-1: never routed
    summary = generate(models_file, plan(models_file, ["a pelican"], 1, ("local",)), tmp_path / "out", FAST, environ={})
    assert summary.rows[0]["error_code"] == "request_failed" and summary.rows[0]["attempts"] == 2
    assert _loopback_only == [("192.0.2.1", 9)] * 2
    _loopback_only.clear()


# -- keys ---------------------------------------------------------------------------------


def test_api_key_is_sent_but_never_written_or_logged(tmp_path, server, monkeypatch, caplog):
    server.expected_key = SECRET
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", SECRET)
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("a pelican riding a bicycle\na heron [401]\n")  # the 401 body echoes the key it got
    caplog.set_level(logging.DEBUG)
    args = ["generate", "--models", str(models_yaml(tmp_path, server)), "--prompts", str(prompts), "--out", str(tmp_path / "out"), "--model", "claude", "--retry-delay", "0.001"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output  # the 401 is a request failure
    assert [s.headers["x-api-key"] for s in server.requests] == [SECRET, SECRET]
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "models.yaml"]
    assert len(written) >= 5
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    assert "[redacted]" in (tmp_path / "out" / "claude" / "a-heron-401" / "00.response.json").read_text()
    assert SECRET not in result.stdout + result.stderr and SECRET not in caplog.text
    assert "request_failed: HTTP 401" in result.stderr
    assert SECRET not in (tmp_path / "models.yaml").read_text()


def test_placeholder_keys_are_sent_and_leave_files_intact(tmp_path, server):
    # Local servers take any key ("k", "EMPTY"); replacing such a word everywhere would mangle the rows.
    summary = run(tmp_path, server, ["a pelican riding a bicycle"], only=("claude",), environ={"FAKE_ANTHROPIC_KEY": "k"})
    assert server.requests[0].headers["x-api-key"] == "k"
    assert manifest(tmp_path) == summary.rows and summary.rows[0]["status"] == "ok" and summary.rows[0]["max_tokens"] == 1024


def test_unset_key_variable_is_a_usage_error_before_any_request(tmp_path, server, monkeypatch):
    monkeypatch.delenv("FAKE_ANTHROPIC_KEY", raising=False)
    prompts = REPO / "configs" / "generate" / "prompts" / "pelican.txt"
    result = CliRunner().invoke(main, ["generate", "--models", str(models_yaml(tmp_path, server)), "--prompts", str(prompts), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "FAKE_ANTHROPIC_KEY is not set" in result.stderr
    assert server.requests == [] and not (tmp_path / "out").exists()
    with pytest.raises(UsageError):
        run(tmp_path, server, ["x"], environ={})


# -- the loop: generate, then score the manifest ------------------------------------------


def test_generate_then_score_the_manifest(tmp_path, server):
    prompts = tmp_path / "prompts.yaml"
    prompts.write_text(yaml.safe_dump({"prompts": ["a pelican riding a bicycle", "a fox [truncated]"]}))
    runner = CliRunner()
    args = ["generate", "--models", str(models_yaml(tmp_path, server)), "--prompts", str(prompts), "--out", str(tmp_path / "out"), "--model", "local", "-n", "2"]
    result = runner.invoke(main, args, env={"FAKE_ANTHROPIC_KEY": SECRET})
    assert result.exit_code == 0, result.output
    manifest_path = result.stdout.strip()
    assert manifest_path == str(tmp_path / "out" / MANIFEST)
    assert "4 samples (2 ok, 2 truncated_output); 4 made now, 0 already there" in result.stderr
    assert "local/a-fox-truncated/00.svg: truncated_output" in result.stderr
    scored = runner.invoke(main, ["score", "--manifest", manifest_path, "--config", str(REPO / "scorer" / "configs" / "structural.yaml"), "--format", "jsonl", "-j", "1", "--no-cache"])
    assert scored.exit_code == 0, scored.output
    records = {Path(r["path"]).relative_to(tmp_path / "out").as_posix(): r for r in map(json.loads, scored.stdout.splitlines())}
    assert set(records) == {"local/a-pelican-riding-a-bicycle/00.svg", "local/a-pelican-riding-a-bicycle/01.svg", "local/a-fox-truncated/00.svg", "local/a-fox-truncated/01.svg"}
    pelican = records["local/a-pelican-riding-a-bicycle/00.svg"]
    assert pelican["status"] == "ok" and pelican["prompt"] == "a pelican riding a bicycle" and pelican["score"] > 0
    fox = records["local/a-fox-truncated/00.svg"]
    assert fox["status"] == "error" and fox["error"]["code"] == "truncated_output" and fox["prompt"] == "a fox [truncated]"
    again = runner.invoke(main, args, env={"FAKE_ANTHROPIC_KEY": SECRET})
    assert again.exit_code == 0 and "0 made now, 4 already there" in again.stderr and len(server.requests) == 4


# -- models file and prompt sets ----------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"models": []}, "models"),
        ({"prompt_template": "Draw it"}, "must contain '{prompt}'"),
        ({"models": [{"name": "a", "kind": "openai", "base_url": "http://x", "model": "m"}] * 2}, "unique"),
        ({"models": [{"name": "../up", "kind": "openai", "base_url": "http://x", "model": "m"}]}, "models.0.name"),
        ({"models": [{"name": "a", "kind": "anthropic", "base_url": "http://x", "model": "m", "seed": 1}]}, "no seed"),
        ({"models": [{"name": "a", "kind": "gemini", "base_url": "http://x", "model": "m"}]}, "models.0.kind"),
        ({"models": [{"name": "a", "kind": "openai", "base_url": "http://x", "model": "m", "api_key": "sk-1"}]}, "Extra inputs"),
    ],
)
def test_models_file_errors(tmp_path, change, message):
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"models": [{"name": "a", "kind": "openai", "base_url": "http://x", "model": "m"}], **change}))
    with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}").replace(".", r"\.")):
        load_models(path)


def test_prompt_sets(tmp_path):
    text = tmp_path / "p.txt"
    text.write_text("# comment\n\na pelican riding a bicycle\n  a café on Mars  \n")
    assert load_prompts(text) == ("a pelican riding a bicycle", "a café on Mars")
    assert slugify("a café on Mars") == "a-cafe-on-mars" and slugify("!!!") == "prompt"
    (tmp_path / "dup.txt").write_text("a\na\n")
    with pytest.raises(ConfigError, match="repeats"):
        load_prompts(tmp_path / "dup.txt")
    (tmp_path / "bad.yaml").write_text("prompts: {a: 1}\n")
    with pytest.raises(ConfigError, match="list of strings"):
        load_prompts(tmp_path / "bad.yaml")
    models_file = load_models(REPO / "configs" / "generate" / "models.example.yaml")
    with pytest.raises(ConfigError, match="share the folder"):
        plan(models_file, ["A Pelican!", "a pelican"], 1)
    with pytest.raises(UsageError, match="no model named nope"):
        plan(models_file, ["a pelican"], 1, only=("nope",))


def test_shipped_configs_load():
    assert load_prompts(REPO / "configs" / "generate" / "prompts" / "pelican.txt") == ("a pelican riding a bicycle",)
    varied = load_prompts(REPO / "configs" / "generate" / "prompts" / "varied.txt")
    assert 10 <= len(varied) <= 12
    models_file = load_models(REPO / "configs" / "generate" / "models.example.yaml")
    assert {m.kind for m in models_file.models} == {"openai", "anthropic"}
    assert len(plan(models_file, varied, 3)) == 3 * len(varied) * len(models_file.models)
