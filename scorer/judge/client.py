"""Asking judges: pictures → PNG, questions → cached answers or HTTP calls, and the accounts.

One :class:`JudgeClient` serves a run: the pointwise ``vlm`` measure asks it one question per
(file, judge, sample), the pairwise tournament one per (pair, order, judge, sample). A question
already answered (same key, see :mod:`.cache`) costs no call. Requests go through
:mod:`scorer.harness.transport` (concurrency limit, timeouts, retries honouring Retry-After);
keys come from the environment variables the config names and are redacted from answers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import numpy as np
from PIL import Image

from ..errors import JudgeError, JudgeMalformedError, JudgeTimeoutError, MalformedResponseError, RequestTimeoutError
from ..harness.endpoints import Content, api_keys, build_request, parse_reply
from ..harness.transport import Attempt, RunOptions, ask_each, redact, run_sync, secrets_of
from .cache import AnswerCache
from .rubric import Rubric, answer_text
from .settings import JudgeEndpoint

T = TypeVar("T")
Mode = Literal["pointwise", "pairwise"]


@dataclass(frozen=True)
class Picture:
    """A render as a judge is shown it: PNG bytes, and a hash of its pixels (the cache's key)."""

    png: bytes
    sha256: str


def picture(image: np.ndarray, max_px: int) -> Picture:
    """The (H, W, 3) uint8 render as PNG, shrunk (never enlarged) so its longer side is at most ``max_px``.

    The key hashes the pixels, not the PNG bytes, so another zlib build changes nothing.
    """
    shown = Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8))
    if max(shown.size) > max_px:
        scale = max_px / max(shown.size)
        shown = shown.resize((max(1, round(shown.width * scale)), max(1, round(shown.height * scale))), Image.Resampling.LANCZOS)
    pixels = np.asarray(shown)
    buffer = io.BytesIO()
    shown.save(buffer, "PNG")
    digest = hashlib.sha256(f"{pixels.shape}".encode() + pixels.tobytes()).hexdigest()
    return Picture(buffer.getvalue(), digest)


@dataclass(frozen=True)
class Question:
    judge: JudgeEndpoint
    content: Content
    seed: int | None
    key: str


def question(judge: JudgeEndpoint, rubric: Rubric, *, mode: Mode, prompt: str, pictures: Sequence[Picture], sample: int) -> Question:
    """One question to one judge: the rubric's text for ``mode`` and the pictures, never SVG source."""
    if mode == "pointwise":
        content: list[str | bytes] = [rubric.pointwise_text(prompt), pictures[0].png]
    else:
        a, b = pictures
        content = [rubric.pairwise_text(prompt), "Drawing A:", a.png, "Drawing B:", b.png]
    # Each sample its own seed, so N samples at temperature > 0 are N draws, and each is reproducible.
    seed = None if judge.seed is None else judge.seed + sample
    settings = {
        "mode": mode, "prompt": prompt, "pictures": [p.sha256 for p in pictures], "sample": sample, "seed": seed,
        "kind": judge.kind, "model": judge.model, "temperature": judge.temperature, "max_tokens": judge.max_tokens,
        "extra_body": judge.extra_body, "rubric_version": rubric.version, "rubric_sha256": rubric.sha256,
    }  # fmt: skip
    key = hashlib.sha256(json.dumps(settings, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    return Question(judge, content, seed, key)


@dataclass(frozen=True)
class Answer(Generic[T]):
    """A parsed answer with the raw text it came from and what it cost when it was made."""

    value: T
    text: str
    input_tokens: int | None
    output_tokens: int | None


@dataclass
class Usage:
    """One judge's account for a run."""

    answers: int = 0  # questions answered (dry run: to answer), from the cache or by a call
    cached: int = 0
    calls: int = 0  # HTTP requests, retries included
    to_call: int = 0  # dry run: distinct questions a run would have to ask
    failed: Counter[str] = field(default_factory=Counter)
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def hit_rate(self) -> float | None:
        asked = self.answers + sum(self.failed.values())
        return self.cached / asked if asked else None


class JudgeClient:
    def __init__(
        self,
        judges: Sequence[JudgeEndpoint],
        rubric: Rubric,
        options: RunOptions,
        *,
        cache: AnswerCache | None,
        dry_run: bool = False,
        environ: Mapping[str, str] = os.environ,
        named_in: str = "the judge config",
    ) -> None:
        """A :class:`~scorer.errors.UsageError` when a key's environment variable is unset."""
        self.judges = tuple(judges)
        self.rubric = rubric
        self.options = options
        self.cache = cache
        self.dry_run = dry_run
        self._keys = api_keys(self.judges, environ, named_in=named_in)
        self._secrets = secrets_of(self._keys.values())
        self.usage = {j.name: Usage() for j in self.judges}
        self._planned: set[str] = set()  # dry run: the questions a run would ask

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()

    def ask(self, questions: Sequence[Question], parse: Callable[[str], T]) -> list[Answer[T] | JudgeError]:
        """Each question's answer (parsed by ``parse``, which raises a :class:`JudgeError` on a bad
        one) or its error; cached answers first, then the rest concurrently. Duplicate questions
        are asked once."""
        found: dict[str, Answer[T] | JudgeError] = {}
        pending: dict[str, Question] = {}
        for q in questions:
            if q.key in found or q.key in pending:
                continue
            stored = self.cache.get(q.key) if self.cache is not None else None
            if stored is not None:
                try:
                    found[q.key] = Answer(parse(stored["text"]), stored["text"], stored.get("input_tokens"), stored.get("output_tokens"))
                    self.usage[q.judge.name].answers += 1
                    self.usage[q.judge.name].cached += 1
                    continue
                except JudgeError:
                    pass  # stored under an older parser that accepted it: ask again
            pending[q.key] = q
        if self.dry_run:
            for q in pending.values():
                usage = self.usage[q.judge.name]
                usage.answers += 1
                if q.key not in self._planned:  # asked once in a run, however many batches repeat it
                    self._planned.add(q.key)
                    usage.to_call += 1
                found[q.key] = JudgeError("dry run: no call made")
        elif pending:
            asked = list(pending.values())
            requests = [build_request(q.judge, q.content, system=self.rubric.system, seed=q.seed, api_key=self._keys[q.judge.name]) for q in asked]
            attempts = run_sync(ask_each(requests, self.options, self._secrets))
            for q, attempt in zip(asked, attempts, strict=True):
                found[q.key] = self._read(q, attempt, parse)
        return [found[q.key] for q in questions]

    def _read(self, q: Question, attempt: Attempt, parse: Callable[[str], T]) -> Answer[T] | JudgeError:
        usage = self.usage[q.judge.name]
        usage.calls += attempt.attempts
        outcome: Answer[T] | JudgeError
        if attempt.error is not None:
            kind = JudgeTimeoutError if isinstance(attempt.error, RequestTimeoutError) else JudgeError
            outcome = kind(f"{q.judge.name}: {attempt.error.message}")
        else:
            assert attempt.body is not None
            try:
                reply = parse_reply(q.judge.kind, attempt.body)
            except MalformedResponseError as exc:
                outcome = JudgeMalformedError(f"{q.judge.name}: {redact(exc.message.encode(), self._secrets).decode()}")
            else:
                usage.input_tokens += reply.input_tokens or 0
                usage.output_tokens += reply.output_tokens or 0
                # A server may echo what it was sent; keys never reach a record or the cache.
                text = redact(reply.text.encode(), self._secrets).decode()
                try:
                    value = parse(answer_text(dataclasses.replace(reply, text=text)))
                except JudgeError as exc:
                    outcome = type(exc)(f"{q.judge.name}: {exc.message}")
                else:
                    outcome = Answer(value, text, reply.input_tokens, reply.output_tokens)
                    if self.cache is not None:
                        self.cache.put(q.key, {"text": text, "input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens, "model": q.judge.model})
        if isinstance(outcome, JudgeError):
            usage.failed[outcome.code] += 1
        else:
            usage.answers += 1
        return outcome

    # -- accounts ------------------------------------------------------------------------------

    def cost_usd(self) -> float | None:
        """This run's spend at the configured prices (None when a judge that was called has none)."""
        total = 0.0
        for judge in self.judges:
            usage = self.usage[judge.name]
            cost = judge.cost_usd(usage.input_tokens, usage.output_tokens)
            if cost is None and (usage.input_tokens or usage.output_tokens):
                return None
            total += cost or 0.0
        return total

    def summary(self, per: tuple[str, int] | None = None) -> list[str]:
        """One line per judge: answers, cache hits, calls, failures, tokens and cost (also per
        100 of ``per``'s unit, e.g. ``("files", 40)``)."""
        lines = []
        for judge in self.judges:
            u = self.usage[judge.name]
            rate = "—" if u.hit_rate is None else f"{u.hit_rate:.0%}"
            if self.dry_run:
                lines.append(f"judge {judge.name} ({judge.model}): dry run: {u.answers} answers needed, {u.cached} in the cache ({rate}), {u.to_call} calls to make")
                continue
            failed = ", ".join(f"{n} {code}" for code, n in sorted(u.failed.items())) or "none failed"
            cost = judge.cost_usd(u.input_tokens, u.output_tokens)
            priced = "no prices configured" if cost is None else f"${cost:.4f} at the configured prices"
            per_call = f", ${cost / per[1] * 100:.4f} per 100 {per[0]}" if cost is not None and per and per[1] else ""
            lines.append(
                f"judge {judge.name} ({judge.model}): {u.answers} answers, {u.cached} from the cache ({rate} hit rate), "
                f"{u.calls} calls made, {failed}; tokens {u.input_tokens} in / {u.output_tokens} out; {priced}{per_call}"
            )
        return lines

    def accounts(self) -> dict[str, Any]:
        """The same figures as data, for JSON output."""
        return {
            judge.name: {
                "model": judge.model, "answers": u.answers, "cached": u.cached, "calls": u.calls, "to_call": u.to_call,
                "hit_rate": u.hit_rate, "failed": dict(u.failed), "input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
                "cost_usd": judge.cost_usd(u.input_tokens, u.output_tokens),
            }  # fmt: skip
            for judge in self.judges
            for u in [self.usage[judge.name]]
        }
