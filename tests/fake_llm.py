"""A chat API on 127.0.0.1 for the generation tests: OpenAI chat completions and Anthropic messages.

It answers each request from markers in the user message, so one run can mix outcomes:

    [429]        first attempt 429 with Retry-After (seconds: ``retry_after``), then a reply
    [503]        first attempt 503, then a reply          [always503]  503 every time
    [slow]       sleeps ``slow_s`` before replying (beyond the client's timeout), every time
    [malformed]  HTTP 200 with a cut-off JSON body          [401]  401 echoing the key it was sent
    [truncated]  a reply cut off inside its SVG, stop reason "length"/"max_tokens"
    [nosvg]      a polite refusal in prose
    (none)       a fenced SVG with some prose around it

A bad network, for tests/test_bad_network.py (each on the first attempt only, then a normal reply):

    [reset]      the connection is reset (RST) before any byte of the reply  [alwaysreset]  every time
    [partial]    the headers promise a body; half of it arrives, then the connection closes
    [stall]      half the body arrives, then nothing for ``slow_s`` (beyond the client's timeout)
    [burst]      the first three attempts answer 500, 502 and 429 (Retry-After 0), then a reply
    [trickle]    (every time) the body arrives in ten pieces over ~0.2 s: slow, but complete

Every request is recorded (path, headers, JSON body) and the peak number in flight is kept.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PELICAN = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 150">'
    '<circle cx="50" cy="115" r="28" fill="none" stroke="#222" stroke-width="4"/>'
    '<circle cx="150" cy="115" r="28" fill="none" stroke="#222" stroke-width="4"/>'
    '<path d="M50 115 L90 75 L150 115 M90 75 L120 75" stroke="#c33" stroke-width="4" fill="none"/>'
    '<ellipse cx="100" cy="55" rx="26" ry="16" fill="#eee" stroke="#333"/>'
    '<path d="M118 45 L150 52 L118 58 Z" fill="#f90"/>'
    "</svg>"
)


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeLLM:
    expected_key: str | None = None
    retry_after: str = "0.3"
    slow_s: float = 3.0
    delay_s: float = 0.0  # every reply, to observe concurrency
    port: int = 0  # 0: any free port
    requests: list[Seen] = field(default_factory=list)
    peak_in_flight: int = 0
    _in_flight: int = 0
    _attempts: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closing: threading.Event = field(default_factory=threading.Event)

    def start(self) -> FakeLLM:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # a client that timed out and left: the late reply has nowhere to go

        self._server = Server(("127.0.0.1", self.port), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    # -- one request ---------------------------------------------------------------------

    def _handle(self, http: BaseHTTPRequestHandler) -> None:
        body = json.loads(http.rfile.read(int(http.headers["content-length"])))
        with self._lock:
            self.requests.append(Seen(http.path, {k.lower(): v for k, v in http.headers.items()}, body))
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
        try:
            self._answer(http, body)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _answer(self, http: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        anthropic = http.path == "/v1/messages"
        prompt = body["messages"][-1]["content"]
        with self._lock:
            self._attempts[(http.path, prompt)] += 1
            attempt = self._attempts[(http.path, prompt)]
        sent_key = http.headers.get("x-api-key") if anthropic else (http.headers.get("authorization") or "").removeprefix("Bearer ")
        if "[401]" in prompt or (self.expected_key and sent_key != self.expected_key):
            return _send(http, 401, {"error": {"message": f"Incorrect API key provided: {sent_key}"}})
        if "[429]" in prompt and attempt == 1:
            return _send(http, 429, {"error": {"message": "rate limited"}}, {"Retry-After": self.retry_after})
        if ("[503]" in prompt and attempt == 1) or "[always503]" in prompt:
            return _send(http, 503, {"error": {"message": "overloaded"}})
        if ("[reset]" in prompt and attempt == 1) or "[alwaysreset]" in prompt:
            return _reset(http)
        if "[burst]" in prompt and attempt <= 3:
            status = (500, 502, 429)[attempt - 1]
            return _send(http, status, {"error": {"message": f"burst {status}"}}, {"Retry-After": "0"} if status == 429 else None)
        if "[slow]" in prompt:
            self._closing.wait(self.slow_s)
        elif self.delay_s:
            self._closing.wait(self.delay_s)
        if "[malformed]" in prompt:
            return _send_raw(http, 200, b'{"id": "x", "choices": [{"message": {"content": "<svg')
        stop = "length" if "[truncated]" in prompt else "stop"
        if "[truncated]" in prompt:
            text = 'Here is the drawing:\n\n```svg\n<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 150">\n  <circle cx="50" cy="115" r="28"/>\n  <path d="M50 115 L90'
        elif "[nosvg]" in prompt:
            text = "I'm sorry, but I can't create images. I can describe a pelican riding a bicycle instead."
        else:
            text = f"Here is an SVG of {prompt.split(' of ', 1)[-1]}:\n\n```svg\n{PELICAN}\n```\n\nThe wheels are circles."
        if anthropic:
            reply = {
                "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                "content": [{"type": "thinking", "thinking": "<svg> plans"}, {"type": "text", "text": text}],
                "stop_reason": "max_tokens" if stop == "length" else "end_turn",
                "usage": {"input_tokens": 21, "output_tokens": 345},
            }  # fmt: skip
        else:
            reply = {
                "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": stop}],
                "usage": {"prompt_tokens": 19, "completion_tokens": 321, "total_tokens": 340},
            }  # fmt: skip
        data = json.dumps(reply).encode()
        if ("[partial]" in prompt or "[stall]" in prompt) and attempt == 1:
            _send_head(http, 200, len(data))
            http.wfile.write(data[: len(data) // 2])
            http.wfile.flush()
            if "[stall]" in prompt:
                self._closing.wait(self.slow_s)
            http.close_connection = True  # the rest never comes: the client sees the body end early
            return None
        if "[trickle]" in prompt:
            _send_head(http, 200, len(data))
            for start in range(0, len(data), -(-len(data) // 10)):
                http.wfile.write(data[start : start + -(-len(data) // 10)])
                http.wfile.flush()
                self._closing.wait(0.02)
            return None
        _send(http, 200, reply)


def _reset(http: BaseHTTPRequestHandler) -> None:
    """Abort the connection: with a zero linger time, close sends RST instead of FIN."""
    http.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    http.close_connection = True
    http.connection.close()


def _send_head(http: BaseHTTPRequestHandler, status: int, length: int) -> None:
    http.send_response(status)
    http.send_header("content-type", "application/json")
    http.send_header("content-length", str(length))
    http.end_headers()


def _send(http: BaseHTTPRequestHandler, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
    _send_raw(http, status, json.dumps(payload).encode(), headers)


def _send_raw(http: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
    http.send_response(status)
    http.send_header("content-type", "application/json")
    http.send_header("content-length", str(len(data)))
    for name, value in (headers or {}).items():
        http.send_header(name, value)
    http.end_headers()
    http.wfile.write(data)
