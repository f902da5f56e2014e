"""HTTP to model endpoints: retries with backoff (a server's Retry-After wins), timeouts, a
concurrency limit, and keys kept out of anything shown or written.

Shared by ``svgscore generate`` (:mod:`scorer.harness.generate`) and the model judge
(:mod:`scorer.judge`); what to send and how to read the answer is :mod:`scorer.harness.endpoints`.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import random
import threading
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import GenerationError, RequestFailedError, RequestTimeoutError
from .endpoints import Request

if TYPE_CHECKING:
    import httpx  # imported where a request is made: scoring without a judge never loads it

REDACTED = "[redacted]"
# Shorter "keys" are placeholders local servers accept ("EMPTY", "none"): replacing every
# occurrence of such a word would corrupt the files, and it guards nothing.
MIN_SECRET_LENGTH = 8

T = TypeVar("T")


@dataclass(frozen=True)
class RunOptions:
    concurrency: int = 4
    timeout_s: float = 120.0  # per request, whole reply included
    retries: int = 3  # further attempts after a 408/429/5xx, a timeout or a connection error
    retry_delay_s: float = 1.0  # first backoff; doubles each retry (Retry-After wins when sent)
    max_wait_s: float = 120.0  # a server asking for a longer pause fails the request instead


@dataclass(frozen=True)
class Attempt:
    """How asking went: the last body received (if any), and the error if no reply came of it."""

    body: bytes | None
    latency_s: float | None  # of the request that returned ``body``
    attempts: int
    error: GenerationError | None = None


async def ask_each(
    requests: Sequence[Request],
    options: RunOptions,
    secrets: Sequence[str],
    finished: Callable[[int, Attempt], None] | None = None,
) -> list[Attempt]:
    """POST every request, at most ``options.concurrency`` in flight; ``finished(index, attempt)``
    is called as each completes. Returns the attempts in the order of ``requests``."""
    import httpx

    gate = asyncio.Semaphore(options.concurrency)
    limits = httpx.Limits(max_connections=options.concurrency, max_keepalive_connections=options.concurrency)
    async with httpx.AsyncClient(timeout=options.timeout_s, limits=limits) as client:

        async def one(index: int, request: Request) -> Attempt:
            # The gate is taken before a request's clock starts: waiting for a free slot is no timeout.
            async with gate:
                attempt = await ask(client, request, options, secrets)
            if finished is not None:
                finished(index, attempt)
            return attempt

        return list(await asyncio.gather(*(one(i, r) for i, r in enumerate(requests))))


async def ask(client: httpx.AsyncClient, request: Request, options: RunOptions, secrets: Sequence[str]) -> Attempt:
    """POST with retries: backoff on 408/429/5xx, timeouts and connection errors; other statuses are final."""
    import httpx

    body, latency = None, None
    for attempt in range(1, options.retries + 2):
        started = time.monotonic()
        wait: float | None = None
        try:
            response = await asyncio.wait_for(
                client.post(request.url, headers=request.headers, json=request.body), options.timeout_s
            )
        except (asyncio.TimeoutError, httpx.TimeoutException):
            error: GenerationError = RequestTimeoutError(f"no complete reply within {options.timeout_s:g} s")
        except httpx.TransportError as exc:
            error = RequestFailedError(f"{type(exc).__name__}: {redact(str(exc).encode(), secrets).decode()}")
        else:
            body, latency = response.content, time.monotonic() - started
            if response.is_success:
                return Attempt(body, latency, attempt)
            error = RequestFailedError(f"HTTP {response.status_code}: {snippet(body, secrets)}")
            if not retryable(response.status_code):
                return Attempt(body, latency, attempt, error)
            wait = retry_after(response.headers)
        if attempt > options.retries:
            break
        delay = wait if wait is not None else backoff(options.retry_delay_s, attempt)
        if delay > options.max_wait_s:
            error = type(error)(f"{error.message}; the server asked to wait {delay:g} s, over the {options.max_wait_s:g} s limit")
            break
        await asyncio.sleep(delay)
    plural = "s" if attempt > 1 else ""
    return Attempt(body, latency, attempt, type(error)(f"{error.message} (after {attempt} attempt{plural})"))


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion from synchronous code, also when this thread already runs
    an event loop (an async caller of a synchronous API): then in a thread of its own."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append((True, asyncio.run(coroutine)))
        except BaseException as exc:  # noqa: BLE001  (re-raised in the caller's thread)
            outcome.append((False, exc))

    thread = threading.Thread(target=target, name="svgscore-http")
    thread.start()
    thread.join()
    ok, value = outcome[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def retryable(status: int) -> bool:
    return status in (408, 429) or status >= 500


def retry_after(headers: httpx.Headers) -> float | None:
    """The pause the server asks for: ``retry-after-ms`` (OpenAI), else ``Retry-After`` in seconds or as a date."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds())


def backoff(first_s: float, attempt: int) -> float:
    # Exponential, with jitter so that concurrent requests turned away together don't return together.
    return first_s * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)


def snippet(body: bytes, secrets: Sequence[str]) -> str:
    text = " ".join(redact(body, secrets).decode("utf-8", "replace").split())
    return text[:300] or "(empty body)"


def secrets_of(keys: Iterable[str | None]) -> tuple[str, ...]:
    """The keys worth redacting: long enough not to be a placeholder word."""
    return tuple(k for k in keys if k and len(k) >= MIN_SECRET_LENGTH)


def redact(data: bytes, secrets: Sequence[str]) -> bytes:
    # An error body may echo the key it was sent (some providers do, partly masked or not).
    for secret in secrets:
        data = data.replace(secret.encode(), REDACTED.encode())
    return data
