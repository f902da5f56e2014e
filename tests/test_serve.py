"""`svgscore serve` end to end: the real command on a real uvicorn server, over loopback with httpx.

Nothing here waits on a clock: micro-batches are closed by item count (the servers that test
batching wait up to ten minutes for company, a hang guard only), and every "has the server
seen it yet" is a poll of /health with a generous deadline.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
import httpx  # noqa: E402

from scorer import ScoreItem, Scorer  # noqa: E402

from .conftest import FIXTURES, LADDER, STRUCTURAL  # noqa: E402

HOSTILE_FILES = sorted(p for p in (FIXTURES / "hostile").iterdir() if p.suffix in (".svg", ".svgz"))
PELICAN = FIXTURES / "ladder" / "06_careful_pelican_on_bicycle.svg"
TOKEN_ENV = "SVGSCORE_TEST_SERVE_TOKEN"
TOKEN = "s3cret-token-for-the-serve-tests"
# The hostile files that hang cairo end at the render time limit: 5 s keeps the test short,
# and is still ~50x what an honest drawing takes on a loaded machine.
CONFIG = {**STRUCTURAL, "render": {"timeout_s": 5}}
HANG_GUARD_S = 180  # only ever reached when something is broken
LONG_WAIT_MS = 600_000  # batches on these servers close by count, never by time
RECORD_CODES = {
    "read_error", "parse_error", "unsafe_svg", "too_large", "too_many_elements", "too_deep",
    "attribute_too_large", "render_error", "render_timeout", "internal_error",
}  # fmt: skip


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: list[str] = field(default_factory=list)

    def health(self) -> dict:
        return httpx.get(f"{self.url}/health", timeout=30).json()

    def wait_for(self, key: str, value: int) -> None:
        deadline = time.monotonic() + HANG_GUARD_S
        while self.health()[key] != value:
            assert time.monotonic() < deadline, f"/health never showed {key} = {value}: {self.health()}"
            time.sleep(0.05)


@contextlib.contextmanager
def _start(tmp_path: Path, config: dict, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    command = [sys.executable, "-m", "scorer", "serve", "--port", "0", "--config", str(config_file), *args]
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    lines: list[str] = []
    ready = threading.Event()

    def drain() -> None:  # keep reading, or a chatty server would block on a full pipe
        for line in process.stderr:
            lines.append(line)
            if "listening on" in line:
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    try:
        assert ready.wait(HANG_GUARD_S), "server did not start"
        match = next((re.search(r"http://[\d.]+:\d+", line) for line in lines if "listening on" in line), None)
        assert match, "".join(lines)
        yield Server(match.group(), process, lines)
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _auth(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code, body
    return body["error"]["message"]


def _same_judgement(record: dict, expected: dict) -> None:
    for key in ("status", "score", "error", "components"):
        assert record[key] == expected[key], key


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    """The general server: CLIP off, a token, small caps so the cap tests stay small."""
    with _start(
        tmp_path_factory.mktemp("serve"), CONFIG,
        "--jobs", "2", "--token-env", TOKEN_ENV, "--max-body-mb", "0.25", "--max-items", "8",
        env={TOKEN_ENV: TOKEN},
    ) as started:  # fmt: skip
        yield started


@pytest.fixture(scope="module")
def library() -> Iterator[Scorer]:
    with Scorer(CONFIG, jobs=1) as scorer:
        yield scorer


def test_one_and_a_batch_give_the_librarys_records(server, library):
    prompts = ["a pelican riding a bicycle", "a turtle wearing roller skates"]
    items = [{"svg": path.read_text(encoding="utf-8"), "prompt": prompts[i % 2]} for i, path in enumerate(LADDER[:6])]
    expected = [r.to_dict() for r in library.score_items(ScoreItem(None, i["prompt"], i["svg"].encode()) for i in items)]

    one = httpx.post(f"{server.url}/score", json={"svg": items[0]["svg"]}, headers=_auth(), timeout=HANG_GUARD_S)
    assert one.status_code == 200
    _same_judgement(one.json()["record"], expected[0])  # no prompt: the default, which items[0] used
    assert one.json()["record"]["path"] is None

    batch = httpx.post(f"{server.url}/score/batch", json={"items": items}, headers=_auth(), timeout=HANG_GUARD_S)
    assert batch.status_code == 200
    records = batch.json()["records"]
    assert [r["prompt"] for r in records] == [i["prompt"] for i in items]
    for record, want in zip(records, expected, strict=True):
        _same_judgement(record, want)

    version = httpx.get(f"{server.url}/version", headers=_auth(), timeout=30).json()
    assert version["config_sha256"] == library.config_sha256 == records[0]["config_sha256"]


def test_hostile_svgs_get_one_record_each_and_leave_the_server_unharmed(server, library):
    # JSON carries text: binary junk arrives as replacement characters, still junk.
    texts = [path.read_bytes().decode("utf-8", errors="replace") for path in HOSTILE_FILES]

    def post(text: str) -> httpx.Response:
        return httpx.post(f"{server.url}/score", json={"svg": text}, headers=_auth(), timeout=HANG_GUARD_S)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(post, texts))
    codes = {}
    for path, response in zip(HOSTILE_FILES, responses, strict=True):
        assert response.status_code == 200, (path.name, response.text)
        record = response.json()["record"]
        assert record["status"] in ("ok", "error")
        if record["status"] == "error":
            assert record["error"]["code"] in RECORD_CODES, (path.name, record["error"])
            codes[path.name] = record["error"]["code"]
    assert codes.get("entity_billion_laughs.svg") == "unsafe_svg"
    assert codes.get("junk_html_page.svg") == "parse_error"

    assert server.process.poll() is None
    assert server.health()["status"] == "ok"
    after = httpx.post(f"{server.url}/score", json={"svg": PELICAN.read_text(encoding="utf-8")}, headers=_auth(), timeout=HANG_GUARD_S)
    _same_judgement(after.json()["record"], library.score_file(PELICAN).to_dict())


def test_request_errors_are_json_with_the_clis_codes(server):
    url = server.url
    svg = PELICAN.read_text(encoding="utf-8")
    # Oversized: declared up front (refused before it is read), and chunked with no length.
    _error(httpx.post(f"{url}/score", content=b"x" * 300_000, headers=_auth(), timeout=60), 413, "too_large")
    chunks = (b'{"svg": "' + b"a" * 65_536 for _ in range(5))
    _error(httpx.post(f"{url}/score", content=chunks, headers=_auth(), timeout=60), 413, "too_large")
    _error(httpx.post(f"{url}/score/batch", json={"items": [{"svg": svg}] * 9}, headers=_auth(), timeout=60), 413, "too_large")
    # Bad JSON, wrong shapes, and a path where SVG text belongs.
    _error(httpx.post(f"{url}/score", content=b'{"svg": ', headers=_auth(), timeout=60), 400, "usage_error")
    _error(httpx.post(f"{url}/score", content=b"\xff\xfe", headers=_auth(), timeout=60), 400, "usage_error")
    _error(httpx.post(f"{url}/score", json=["not", "an", "object"], headers=_auth(), timeout=60), 400, "usage_error")
    _error(httpx.post(f"{url}/score", json={"svg": 5}, headers=_auth(), timeout=60), 400, "usage_error")
    message = _error(httpx.post(f"{url}/score", json={"svg": svg, "path": "/etc/passwd"}, headers=_auth(), timeout=60), 400, "usage_error")
    assert "path" in message
    _error(httpx.post(f"{url}/score", json={"path": "/etc/passwd"}, headers=_auth(), timeout=60), 400, "usage_error")
    mismatched = {"query": ["a", "b"], "prompts": ["a"]}
    _error(httpx.post(f"{url}/reward", json=mismatched, headers=_auth(), timeout=60), 400, "usage_error")
    # Routing.
    _error(httpx.get(f"{url}/nowhere", headers=_auth(), timeout=60), 404, "not_found")
    _error(httpx.get(f"{url}/score", headers=_auth(), timeout=60), 405, "method_not_allowed")
    assert server.health()["status"] == "ok"


def test_bearer_token_is_required_and_never_logged(server):
    svg = {"svg": PELICAN.read_text(encoding="utf-8")}
    _error(httpx.post(f"{server.url}/score", json=svg, timeout=60), 401, "unauthorized")
    _error(httpx.post(f"{server.url}/score", json=svg, headers=_auth("wrong"), timeout=60), 401, "unauthorized")
    _error(httpx.post(f"{server.url}/score", json=svg, headers={"Authorization": TOKEN}, timeout=60), 401, "unauthorized")
    _error(httpx.get(f"{server.url}/version", timeout=60), 401, "unauthorized")
    assert httpx.get(f"{server.url}/health", timeout=60).status_code == 200  # liveness needs no token
    assert httpx.post(f"{server.url}/score", json=svg, headers=_auth(), timeout=HANG_GUARD_S).status_code == 200
    assert server.log and not any(TOKEN in line for line in server.log)


def test_reward_endpoint_speaks_openrlhfs_remote_rm_protocol(server, library):
    pelican = PELICAN.read_text(encoding="utf-8")
    example = '<svg xmlns="http://www.w3.org/2000/svg"><circle r="5"/></svg>'
    prompts = [
        "<|user|>Draw a pelican riding a bicycle as SVG.<|assistant|>",
        f"<|user|>Like this: {example} — now a pelican.<|assistant|>",  # an example SVG in the prompt
        "<|user|>Draw it.<|assistant|>",
        "<|user|>Draw it.<|assistant|>",
    ]
    responses = [f"Here:\n```svg\n{pelican}\n```", "Sorry, I cannot draw.", pelican[: len(pelican) // 2], f"```svg\n{pelican}\n```"]
    labels = ["a pelican riding a bicycle", "a pelican riding a bicycle", "a pelican riding a bicycle", ""]
    # OpenRLHF's request: {"query": prompt + response, "prompts", "labels"}; it reads "rewards".
    body = {"query": [p + r for p, r in zip(prompts, responses, strict=True)], "prompts": prompts, "labels": labels}
    response = httpx.post(f"{server.url}/reward", json=body, headers=_auth(), timeout=HANG_GUARD_S)
    assert response.status_code == 200
    result = response.json()
    expected = library.score_file(PELICAN).score / 100
    assert result["rewards"][0] == pytest.approx(expected)
    assert result["rewards"][1:3] == [0.0, 0.0]  # no SVG of its own (the prompt's is cut off); truncated
    assert result["extra_logs"]["svgscore_unusable"] == [0.0, 1.0, 1.0, 0.0]
    # No label: judged against the prompt text, which names no pelican or bicycle.
    fallback = library.score_svg(pelican, prompt=prompts[3].strip()).score / 100
    assert result["rewards"][3] == pytest.approx(fallback) and fallback != pytest.approx(expected)
    assert result["scores"] == result["rewards"]
    same_path = httpx.post(f"{server.url}/get_reward", json={"query": body["query"][:1]}, headers=_auth(), timeout=HANG_GUARD_S)
    assert same_path.json()["rewards"] == [pytest.approx(expected)]  # query alone: the default prompt


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("open_clip")
    try:
        from tiny_clip import build_tiny_clip
    except ImportError:  # tests/ imported as a package
        from tests.tiny_clip import build_tiny_clip
    return build_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


def test_concurrent_requests_are_micro_batched_into_one_clip_pass(tmp_path, tiny, monkeypatch):
    monkeypatch.delenv("SVGSCORE_CLIP_WEIGHTS", raising=False)
    config = {"clip": tiny.clip_section()}
    svgs = [path.read_text(encoding="utf-8") for path in LADDER[:8]]
    with _start(tmp_path, config, "--jobs", "2", "--batch-size", "8", "--max-wait-ms", str(LONG_WAIT_MS)) as started:
        def post(svg: str) -> httpx.Response:
            return httpx.post(f"{started.url}/score", json={"svg": svg}, timeout=HANG_GUARD_S)

        # Eight concurrent clients; the pass cannot start before all eight items are in.
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(post, svgs))
        assert started.health()["batches"] == 1 and started.health()["items"] == 8
    with Scorer(config, jobs=1) as scorer:
        expected = [r.to_dict() for r in scorer.score_items(ScoreItem(None, "a pelican riding a bicycle", s.encode()) for s in svgs)]
    assert any(component["details"].get("cosine") is not None for component in expected[-1]["components"].values())
    for response, want in zip(responses, expected, strict=True):
        _same_judgement(response.json()["record"], want)  # CLIP padded per batch: identical embeddings


def test_a_client_that_disconnects_mid_batch_is_dropped_and_the_rest_are_served(tmp_path, library):
    svg = PELICAN.read_text(encoding="utf-8")
    with _start(tmp_path, STRUCTURAL, "--jobs", "1", "--batch-size", "3", "--max-wait-ms", str(LONG_WAIT_MS)) as started:
        host, port = started.url.removeprefix("http://").split(":")
        body = json.dumps({"svg": svg}).encode()
        with socket.create_connection((host, int(port)), timeout=60) as gone:
            gone.sendall(
                b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
            )  # fmt: skip
            started.wait_for("queued", 1)  # its item waits for a pass of three
        started.wait_for("disconnects", 1)  # the server noticed the hang-up

        # Two more items fill the pass: the departed client's item is dropped, not scored.
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            responses = list(pool.map(lambda _: httpx.post(f"{started.url}/score", json={"svg": svg}, timeout=HANG_GUARD_S), range(2)))
        expected = library.score_file(PELICAN).to_dict()
        for response in responses:
            _same_judgement(response.json()["record"], expected)
        health = started.health()
        assert (health["batches"], health["items"], health["cancelled"], health["queued"]) == (1, 2, 1, 0)

        # A client leaving halfway through its body does no harm either.
        with socket.create_connection((host, int(port)), timeout=60) as half:
            half.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + body[:100])
        assert started.process.poll() is None and started.health()["status"] == "ok"


def test_serve_without_the_extra_says_how_to_install_it(monkeypatch):
    from click.testing import CliRunner

    from scorer.cli import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 2
    assert "pip install 'svgscore[serve]'" in result.output
