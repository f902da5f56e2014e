"""The two chat APIs svgscore generates with: how to ask, and how to read the answer.

* ``openai`` — OpenAI-compatible chat completions, ``POST {base_url}/chat/completions``
  (OpenAI, OpenRouter, llama.cpp server, vLLM, Ollama, LM Studio; ``base_url`` ends in ``/v1``).
* ``anthropic`` — the Anthropic messages API, ``POST {base_url}/v1/messages``.

Pure functions only; the HTTP calls live in :mod:`scorer.harness.transport`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, model_validator

from ..config import _Strict
from ..errors import MalformedResponseError, UsageError

Kind = Literal["openai", "anthropic"]
# A user message: text, or text and PNG images (bytes) in the order the model should see them.
Content = str | Sequence[str | bytes]
ANTHROPIC_VERSION = "2023-06-01"


class ModelSpec(_Strict):
    """One model behind one endpoint, as listed in the models YAML file."""

    # The name is a folder name in the output tree, so it is kept to safe characters.
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=100)
    kind: Kind
    base_url: str = Field(pattern=r"^https?://")
    model: str = Field(min_length=1)
    # The *name* of the environment variable holding the key; keys never live in files.
    api_key_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    temperature: float = Field(1.0, ge=0, le=2)
    max_tokens: int = Field(4096, gt=0)
    seed: int | None = None
    # Merged into the request body last, for parameters some models need (top_p,
    # max_completion_tokens, reasoning settings, ...).
    extra_body: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _seed_supported(self) -> ModelSpec:
        if self.kind == "anthropic" and self.seed is not None:
            raise ValueError("the Anthropic messages API has no seed; remove 'seed'")
        return self


def api_keys(models: Sequence[ModelSpec], environ: Mapping[str, str], *, named_in: str = "the models file") -> dict[str, str | None]:
    """Each model's key from its environment variable; a named variable that is unset is a usage error."""
    missing = sorted({m.api_key_env for m in models if m.api_key_env and not environ.get(m.api_key_env)})
    if missing:
        raise UsageError(f"environment variable {', '.join(missing)} is not set ({named_in} names it as api_key_env)")
    return {m.name: environ[m.api_key_env] if m.api_key_env else None for m in models}


@dataclass(frozen=True)
class Request:
    url: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """What a model answered, whichever API it came from."""

    text: str
    stop_reason: str | None
    truncated: bool  # the endpoint says it stopped at the token limit
    input_tokens: int | None
    output_tokens: int | None
    refusal: str | None = None  # the endpoint says the model declined (OpenAI ``refusal``, Anthropic stop "refusal")


def build_request(spec: ModelSpec, prompt: Content, *, system: str | None, seed: int | None, api_key: str | None) -> Request:
    """The HTTP request asking ``spec`` for one reply to ``prompt`` (text, or text and images)."""
    content = prompt if isinstance(prompt, str) else [_part(spec.kind, part) for part in prompt]
    base = spec.base_url.rstrip("/")
    body: dict[str, Any] = {"model": spec.model, "max_tokens": spec.max_tokens, "temperature": spec.temperature}
    headers = {"content-type": "application/json"}
    if spec.kind == "openai":
        url = f"{base}/chat/completions"
        body["messages"] = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": content}]
        if seed is not None:
            body["seed"] = seed
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
    else:
        url = f"{base}/v1/messages"
        body["messages"] = [{"role": "user", "content": content}]
        if system:
            body["system"] = system
        headers["anthropic-version"] = ANTHROPIC_VERSION
        if api_key:
            headers["x-api-key"] = api_key
    return Request(url, headers, {**body, **spec.extra_body})


def _part(kind: Kind, part: str | bytes) -> dict[str, Any]:
    """One part of a message's content in ``kind``'s format: text, or a PNG image sent inline."""
    if isinstance(part, str):
        return {"type": "text", "text": part}
    data = base64.b64encode(part).decode("ascii")
    if kind == "openai":
        return {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}}
    return {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}}


def parse_reply(kind: Kind, body: bytes) -> Reply:
    """Read a successful response body of the given API; :class:`MalformedResponseError` if it isn't one."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedResponseError(f"response body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedResponseError("response body is not a JSON object")
    return _read(kind, data)


def reply_from_json(data: object) -> Reply | None:
    """A reply from a saved API response of either kind, or None if ``data`` is neither."""
    if isinstance(data, dict) and "choices" in data:
        return _read("openai", data)
    if isinstance(data, dict) and isinstance(data.get("content"), list):
        return _read("anthropic", data)
    return None


def _read(kind: Kind, data: dict[str, Any]) -> Reply:
    if isinstance(data.get("error"), dict):  # some servers report failures with HTTP 200
        raise MalformedResponseError(f"the endpoint answered with an error: {str(data['error'].get('message', data['error']))[:300]}")
    try:
        usage = data.get("usage") or {}
        if kind == "openai":
            choice = data["choices"][0]
            text, stop = _text(choice["message"].get("content")), choice.get("finish_reason")
            refusal = choice["message"].get("refusal") or ("content_filter" if stop == "content_filter" else None)
            counts = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
            return Reply(text, stop, stop == "length", *counts, refusal=None if refusal is None else str(refusal))
        text, stop = _text(data["content"]), data.get("stop_reason")
        counts = _count(usage.get("input_tokens")), _count(usage.get("output_tokens"))
        return Reply(text, stop, stop == "max_tokens", *counts, refusal=(text or "refusal") if stop == "refusal" else None)
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise MalformedResponseError(f"not a {kind} response ({type(exc).__name__}: {exc})") from None


def _text(content: object) -> str:
    """Message content: a string, or a list of parts of which the text ones count (thinking does not)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part["text"] for part in content if isinstance(part, dict) and part.get("type") == "text")
    raise TypeError(f"content is a {type(content).__name__}")


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
