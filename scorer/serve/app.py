"""The ``svgscore serve`` application: a Starlette app around one held, warmed-up Scorer.

Endpoints (JSON in, JSON out; docs in the README, "Scoring service"):

* ``GET /health`` — liveness and batching counters (no token needed).
* ``GET /version`` — svgscore version and the config hash every record carries.
* ``POST /score`` — ``{"svg", "prompt"?}`` → ``{"record": {...}}``.
* ``POST /score/batch`` — ``{"items": [{"svg", "prompt"?}, ...]}`` → ``{"records": [...]}``.
* ``POST /reward`` (also ``/get_reward``) — OpenRLHF's remote reward protocol:
  ``{"query": [...], "prompts": [...]?, "labels": [...]?}`` → ``{"rewards", "scores", "extra_logs"}``.

Records are ``ScoreResult.to_dict()``, as the CLI writes them. Only SVG *text* is accepted and
nothing in a request is ever read as a path. Every error is ``{"error": {"code", "message"}}``:
request errors are 4xx (the CLI's exit 2), a bad SVG is an error *record* with the CLI's code.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .. import __version__
from ..api import Scorer
from ..config import DEFAULT_PROMPT
from ..errors import SvgScoreError, UsageError
from ..inputs import ScoreItem
from ..integrations.batching import MicroBatcher
from ..integrations.rl import UNUSABLE_REWARD, reply_item, reward_of
from ..record import ScoreResult

# Request-level error codes. Per-SVG problems are never request errors: they are records with
# the CLI's codes (parse_error, too_large, ...). These mirror the CLI's exit codes: a usage
# error (exit 2) is a 4xx; "too_large" is the CLI's own code for an input over a cap.
USAGE_ERROR, UNAUTHORIZED, TOO_LARGE, INTERNAL_ERROR = "usage_error", "unauthorized", "too_large", "internal_error"
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


@dataclass(frozen=True)
class ServeSettings:
    max_body_bytes: int = 32 << 20  # a whole request; each SVG also meets the config's limits.max_bytes
    max_items: int = 256  # items (or queries) in one request
    max_batch: int = 64  # items per scoring pass (micro-batch)
    max_wait_s: float = 0.02  # how long the first request of a pass waits for company
    token: str | None = None  # bearer token for everything but /health; never logged
    unusable_reward: float = UNUSABLE_REWARD
    prompt: str = DEFAULT_PROMPT  # for items and queries that bring none


class RequestError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a "path" (or any unknown) key is refused, not ignored


class ItemIn(_Strict):
    svg: str
    prompt: str | None = Field(None, min_length=1)


class BatchIn(_Strict):
    items: list[ItemIn]


class RewardIn(BaseModel):
    # OpenRLHF forks add keys of their own (datasources, token ids): ignored, not refused.
    query: list[str]
    prompts: list[str] | None = None
    labels: list[str | None] | None = None


def create_app(scorer: Scorer, settings: ServeSettings) -> Starlette:
    """The service around ``scorer`` (already warm: the caller owns and closes it)."""
    state: dict[str, Any] = {"disconnects": 0}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        state["batcher"] = MicroBatcher(scorer, max_batch=settings.max_batch, max_wait_s=settings.max_wait_s)
        try:
            yield
        finally:
            await asyncio.to_thread(state["batcher"].close)

    async def score_items(request: Request, items: Sequence[ScoreItem]) -> list[ScoreResult] | None:
        """Score through the shared batcher; None when the client left before the answer."""
        future = state["batcher"].submit(items)
        waiter = asyncio.wrap_future(future)
        gone = asyncio.ensure_future(_disconnected(request))
        done, _ = await asyncio.wait({waiter, gone}, return_when=asyncio.FIRST_COMPLETED)
        if waiter in done:
            gone.cancel()
            try:
                return waiter.result()
            except UsageError as exc:  # the server's setup (e.g. a required model) cannot score
                raise RequestError(503, _code_of(exc), str(exc)) from None
        future.cancel()  # dropped if its pass has not started; else its records are discarded
        state["disconnects"] += 1
        return None

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok", "disconnects": state["disconnects"], **asdict(state["batcher"].stats)})

    async def version(request: Request) -> Response:
        _authorize(request, settings.token)
        return JSONResponse({"svgscore_version": __version__, "config_sha256": scorer.config_sha256})

    async def score_one(request: Request) -> Response:
        _authorize(request, settings.token)
        item = _parse(ItemIn, await _read_json(request, settings.max_body_bytes))
        results = await score_items(request, [_item(item, settings.prompt)])
        return Response(status_code=499) if results is None else JSONResponse({"record": results[0].to_dict()})

    async def score_batch(request: Request) -> Response:
        _authorize(request, settings.token)
        batch = _parse(BatchIn, await _read_json(request, settings.max_body_bytes))
        _check_count(len(batch.items), settings.max_items)
        results = await score_items(request, [_item(item, settings.prompt) for item in batch.items])
        return Response(status_code=499) if results is None else JSONResponse({"records": [r.to_dict() for r in results]})

    async def reward(request: Request) -> Response:
        _authorize(request, settings.token)
        body = _parse(RewardIn, await _read_json(request, settings.max_body_bytes))
        _check_count(len(body.query), settings.max_items)
        for name in ("prompts", "labels"):
            values = getattr(body, name)
            if values is not None and len(values) != len(body.query):
                raise RequestError(400, USAGE_ERROR, f"'{name}' has {len(values)} entries for {len(body.query)} queries")
        items = [reply_item(*_reward_pair(body, i, settings.prompt)) for i in range(len(body.query))]
        results = await score_items(request, items)
        if results is None:
            return Response(status_code=499)
        rewards = [reward_of(r, settings.unusable_reward) for r in results]
        return JSONResponse(
            {
                "rewards": rewards,
                # OpenRLHF filters on "scores" expecting [0, 1]; a negative unusable reward is 0 there.
                "scores": [min(max(value, 0.0), 1.0) for value in rewards],
                "extra_logs": {
                    "svgscore": [r.score if r.status == "ok" and r.score is not None else 0.0 for r in results],
                    "svgscore_unusable": [float(r.status != "ok" or r.score is None) for r in results],
                },
            }
        )

    routes = [
        Route("/health", health, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
        Route("/score", score_one, methods=["POST"]),
        Route("/score/batch", score_batch, methods=["POST"]),
        Route("/reward", reward, methods=["POST"]),
        Route("/get_reward", reward, methods=["POST"]),  # the path OpenRLHF's own example server uses
    ]
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={RequestError: _request_error, HTTPException: _http_error, Exception: _internal_error},
    )


async def _disconnected(request: Request) -> None:
    """Return when the client hangs up (after the body, ASGI's receive() only reports that)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _authorize(request: Request, token: str | None) -> None:
    if token is None:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    # Constant-time comparison; neither token is ever put into a message or a log line.
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise RequestError(401, UNAUTHORIZED, "missing or wrong bearer token (Authorization: Bearer ...)")


async def _read_json(request: Request, cap: int) -> Any:
    """The body as JSON, refusing more than ``cap`` bytes before reading them where it can."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise RequestError(413, TOO_LARGE, f"request body of {int(declared):,} bytes exceeds the {cap:,}-byte cap")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > cap:  # a chunked body declares no length: counted as it comes
                raise RequestError(413, TOO_LARGE, f"request body exceeds the {cap:,}-byte cap")
    except ClientDisconnect:
        raise RequestError(400, USAGE_ERROR, "the client disconnected before sending the whole body") from None
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestError(400, USAGE_ERROR, f"request body is not JSON: {exc}") from None


def _parse(model: type[BaseModel], data: Any) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
        raise RequestError(400, USAGE_ERROR, f"invalid request: {problems}") from None


def _check_count(count: int, cap: int) -> None:
    if count > cap:
        raise RequestError(413, TOO_LARGE, f"{count} items in one request; the cap is {cap}")


def _item(item: ItemIn, default_prompt: str) -> ScoreItem:
    return ScoreItem(path=None, prompt=item.prompt or default_prompt, data=item.svg.encode("utf-8"))


def _reward_pair(body: RewardIn, index: int, default_prompt: str) -> tuple[str, str]:
    """(response text, prompt to judge against) for OpenRLHF's query ``index``.

    ``query`` is prompt + response; the prompt part is cut off when it is there, so an example
    SVG inside the prompt is never scored as the answer. The label (``--label_key``), when
    given, is what the drawing is judged against; else the prompt text.
    """
    query = body.query[index]
    prompt = body.prompts[index] if body.prompts is not None else ""
    response = query[len(prompt) :] if prompt and query.startswith(prompt) else query
    label = body.labels[index] if body.labels is not None else None
    return response, (label if isinstance(label, str) and label.strip() else prompt.strip() or default_prompt)


def _code_of(exc: SvgScoreError) -> str:
    """An error class's code: its ``code`` when it has one, else its name in snake case."""
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        return code
    name = type(exc).__name__
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


async def _request_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestError)
    return error_response(exc.status, exc.code, exc.message)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, _HTTP_CODES.get(exc.status_code, USAGE_ERROR), str(exc.detail))


async def _internal_error(_: Request, exc: Exception) -> Response:
    # Starlette re-raises after answering, so uvicorn logs the traceback (never the headers).
    return error_response(500, INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")

