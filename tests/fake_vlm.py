"""A vision judge on 127.0.0.1 for the model-judge tests: both chat APIs, answering from the pixels.

Built on :class:`tests.fake_llm.FakeLLM` (same server, request log, key check and peak
concurrency); only the answer differs. It really decodes every PNG it is sent:

* one image (pointwise): each criterion the prompt text asks for (the quoted keys after
  "exactly these keys:") gets a score from the painted share of the picture (pixels that
  differ from white): more drawn, higher score;
* two images (pairwise): the one with more painted area wins; when the two are within
  ``bias_margin`` of each other it picks the first shown: a judge with position bias.

Markers in the prompt choose failures, per request:

    [malformed]  prose, not JSON          [badkeys]  JSON with the wrong keys
    [refuse]     an apology in prose      [flagged]  the API's own refusal (OpenAI ``refusal``)
    [429]        first attempt 429 with Retry-After ``retry_after``, then an answer
    [slow]       waits ``slow_s`` (beyond the client's timeout) every time
    [fence]      the JSON inside a ```json fence (accepted)
    [echo]       the reason quotes the key it was sent (it must be redacted)
    [noisy]      pointwise scores moved by the request's seed: seed 0 → +0, 1 → +3, 2 → −2 (their median: +0)

With ``gate`` (a :class:`threading.Barrier`), each request waits until that many are in flight:
a concurrency limit is then observed without depending on timing.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np
from PIL import Image

from .fake_llm import FakeLLM, _send


def painted_share(png: bytes) -> float:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.int16)
    return float((np.abs(pixels - 255).max(axis=-1) > 24).mean())


def criterion_score(share: float, weight: float) -> int:
    return int(min(10, round(weight * share)))


@dataclass
class FakeVLM(FakeLLM):
    bias_margin: float = 0.02
    images_seen: int = 0
    gate: threading.Barrier | None = None

    def _answer(self, http: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        anthropic = http.path == "/v1/messages"
        texts, images = _parts(body["messages"][-1]["content"], anthropic)
        prompt = "\n".join(texts)
        with self._lock:
            self.images_seen += len(images)
            key = (http.path, hashlib.sha256(prompt.encode() + b"".join(images)).hexdigest())
            self._attempts[key] += 1
            attempt = self._attempts[key]
        sent_key = http.headers.get("x-api-key") if anthropic else (http.headers.get("authorization") or "").removeprefix("Bearer ")
        if self.expected_key and sent_key != self.expected_key:
            return _send(http, 401, {"error": {"message": f"Incorrect API key provided: {sent_key}"}})
        if "[429]" in prompt and attempt == 1:
            return _send(http, 429, {"error": {"message": "rate limited"}}, {"Retry-After": self.retry_after})
        if self.gate is not None:
            try:
                self.gate.wait(timeout=30)  # a hang guard only: with the limit kept, the parties arrive together
            except threading.BrokenBarrierError:
                pass
        if "[slow]" in prompt:
            self._closing.wait(self.slow_s)
        elif self.delay_s:
            self._closing.wait(self.delay_s)
        refusal = None
        if "[malformed]" in prompt:
            text = "Score: 7 out of 10, nice pelican."
        elif "[refuse]" in prompt:
            text = "I'm sorry, but I can't grade this image."
        elif "[flagged]" in prompt:
            text, refusal = "", "I can't help with that."
        elif len(images) == 2:
            a, b = (painted_share(png) for png in images)
            winner = "A" if a > b or abs(a - b) < self.bias_margin else "B"
            text = json.dumps({"winner": winner, "reason": f"painted {a:.3f} against {b:.3f}"})
        else:
            share = painted_share(images[0])
            keys = re.findall(r'"(\w+)"', prompt.split("exactly these keys:", 1)[-1].split("\n", 1)[0])
            noise = {0: 0, 1: 3, 2: -2}.get(body.get("seed") or 0, 0) if "[noisy]" in prompt else 0
            answer: dict[str, Any] = {
                k: max(0, min(10, criterion_score(share, 40 - 8 * i) + noise)) for i, k in enumerate(k for k in keys if k != "reason")
            }
            if "[badkeys]" in prompt:
                answer = {"score": 7}
            answer["reason"] = f"{share:.1%} of the picture is drawn" + (f" (key {sent_key})" if "[echo]" in prompt else "")
            text = json.dumps(answer)
        if "[fence]" in prompt:
            text = f"```json\n{text}\n```"
        usage_in, usage_out = 20 + 85 * len(images) + len(prompt) // 4, max(1, len(text) // 4)
        if anthropic:
            reply = {
                "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                "content": [{"type": "text", "text": text}] if text else [],
                "stop_reason": "refusal" if refusal else "end_turn",
                "usage": {"input_tokens": usage_in, "output_tokens": usage_out},
            }  # fmt: skip
        else:
            message = {"role": "assistant", "content": text or None, "refusal": refusal}
            reply = {
                "id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": usage_in, "completion_tokens": usage_out, "total_tokens": usage_in + usage_out},
            }  # fmt: skip
        _send(http, 200, reply)


def _parts(content: Any, anthropic: bool) -> tuple[list[str], list[bytes]]:
    """The text parts and the decoded images of a message, in order, in either API's format."""
    if isinstance(content, str):
        return [content], []
    texts, images = [], []
    for part in content:
        if part["type"] == "text":
            texts.append(part["text"])
        elif anthropic and part["type"] == "image":
            assert part["source"]["media_type"] == "image/png"
            images.append(base64.b64decode(part["source"]["data"]))
        elif part["type"] == "image_url":
            header, data = part["image_url"]["url"].split(",", 1)
            assert header == "data:image/png;base64"
            images.append(base64.b64decode(data))
    return texts, images


def main() -> None:
    """Run the fake judge in the foreground: ``python -m tests.fake_vlm --port 8000``."""
    import argparse

    parser = argparse.ArgumentParser(description="svgscore's fake vision judge (answers from painted area), for trying the vlm measure")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    fake = FakeVLM(port=args.port).start()
    print(f"fake vision judge on {fake.url}/v1 (OpenAI) and {fake.url}/v1/messages (Anthropic); Ctrl-C stops it", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
