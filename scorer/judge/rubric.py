"""The rubric a model judge grades with (versioned YAML), and strict parsing of its answers.

A rubric names its criteria (each a question and a weight), the system text, and the two
message templates: ``pointwise`` (one drawing: a 0–10 score per criterion and a reason) and
``pairwise`` (two drawings: which is better). Placeholders ``{prompt}``, ``{criteria}`` and
``{keys}`` are filled by plain replacement, so JSON braces in a template need no escaping.

Answers are parsed strictly: one JSON object (a reply that is only a fenced ```json block is
accepted, as many models fence by habit), exactly the keys asked for, numbers in range.
Anything else is :class:`~scorer.errors.JudgeMalformedError`; a judge that apologises instead
of answering is :class:`~scorer.errors.JudgeRefusedError`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from ..config import _Strict, describe, read_yaml
from ..errors import ConfigError, JudgeMalformedError, JudgeRefusedError
from ..harness.endpoints import Reply

Verdict = Literal["a", "b", "tie"]
MAX_REASON_CHARS = 500
# How judges decline in prose: an answer that is not JSON and opens like this is a refusal.
_REFUSAL = re.compile(r"^\W*(i'?m sorry|i am sorry|sorry|i can(?:no|')?t|i am unable|i'?m unable|i won'?t|as an ai)\b", re.IGNORECASE)
_FENCE = re.compile(r"^```(?:json)?\s*\n?(.*?)\n?```$", re.DOTALL | re.IGNORECASE)


class Criterion(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)
    weight: float = Field(gt=0)
    question: str = Field(min_length=1)


class Rubric(_Strict):
    version: str = Field(min_length=1, max_length=40)
    system: str = Field(min_length=1)
    criteria: tuple[Criterion, ...] = Field(min_length=1)
    pointwise: str
    pairwise: str

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
        names = [c.name for c in self.criteria]
        if len(set(names)) != len(names) or "reason" in names:
            raise ValueError("criterion names must be unique and not 'reason'")
        for field in ("pointwise", "pairwise"):
            if "{prompt}" not in getattr(self, field):
                raise ValueError(f"{field} must contain '{{prompt}}'")
        return self

    @functools.cached_property
    def sha256(self) -> str:
        """A hash of the rubric's content: an edit re-asks, even without a new version."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()

    def _fill(self, template: str, prompt: str) -> str:
        listed = "\n".join(f"- {c.name}: {c.question}" for c in self.criteria)
        keys = ", ".join(f'"{c.name}"' for c in self.criteria)
        return template.replace("{criteria}", listed).replace("{keys}", keys).replace("{prompt}", prompt).strip()

    def pointwise_text(self, prompt: str) -> str:
        return self._fill(self.pointwise, prompt)

    def pairwise_text(self, prompt: str) -> str:
        return self._fill(self.pairwise, prompt)

    def overall(self, scores: dict[str, float]) -> float:
        """The weighted mean of the criteria's 0–10 scores, as a value in [0, 1]."""
        total = sum(c.weight for c in self.criteria)
        return sum(c.weight * scores[c.name] for c in self.criteria) / (10.0 * total)


PACKAGED = "default"


def load_rubric(reference: str) -> Rubric:
    """A packaged rubric by name (``default``) or a YAML file by (absolute) path."""
    if reference.endswith((".yaml", ".yml")):
        raw, label = read_yaml(Path(reference), "rubric"), f"rubric {reference}"
    else:
        entry = resources.files("scorer") / "judge" / "rubrics" / f"{reference}.yaml"
        if not entry.is_file():
            raise ConfigError(f"no packaged rubric named {reference!r} (available: {PACKAGED}; or give a .yaml path)")
        raw, label = read_yaml(Path(str(entry)), "packaged rubric"), f"packaged rubric {reference}"
    try:
        return Rubric.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"invalid {label}: {describe(exc)}") from None


# -- answers -----------------------------------------------------------------------------------


def answer_text(reply: Reply) -> str:
    """The reply's text, or the judge error a refusal or a cut-off reply is."""
    if reply.refusal is not None:
        raise JudgeRefusedError(f"the judge declined: {reply.refusal[:200]}")
    if reply.truncated:
        raise JudgeMalformedError(f"the answer was cut off at max_tokens ({reply.output_tokens} tokens): {reply.text[:120]!r}")
    return reply.text


def _json_object(text: str) -> dict[str, object]:
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    try:
        data = json.loads(stripped)
    except json.JSONDecodeError:
        if _REFUSAL.match(stripped):
            raise JudgeRefusedError(f"the judge declined: {stripped[:200]!r}") from None
        raise JudgeMalformedError(f"the answer is not a JSON object: {stripped[:120]!r}") from None
    if not isinstance(data, dict):
        raise JudgeMalformedError(f"the answer is JSON but not an object: {stripped[:120]!r}")
    return data


def _reason(data: dict[str, object]) -> str:
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_CHARS:
        raise JudgeMalformedError(f"'reason' must be a sentence of at most {MAX_REASON_CHARS} characters, not {str(reason)[:80]!r}")
    return reason.strip()


def parse_scores(rubric: Rubric, text: str) -> tuple[dict[str, float], str]:
    """A pointwise answer: each criterion's score in [0, 10], and the reason."""
    data = _json_object(text)
    expected = {c.name for c in rubric.criteria} | {"reason"}
    if set(data) != expected:
        missing, extra = sorted(expected - set(data)), sorted(set(data) - expected)
        raise JudgeMalformedError(f"the answer's keys are wrong: missing {missing or 'none'}, unexpected {extra or 'none'}")
    scores = {}
    for criterion in rubric.criteria:
        value = data[criterion.name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 10:
            raise JudgeMalformedError(f"{criterion.name!r} must be a number from 0 to 10, not {value!r}")
        scores[criterion.name] = float(value)
    return scores, _reason(data)


def parse_verdict(text: str) -> tuple[Verdict, str]:
    """A pairwise answer: ``"a"``, ``"b"`` or ``"tie"`` for the drawings in the order shown, and the reason."""
    data = _json_object(text)
    if set(data) != {"winner", "reason"}:
        raise JudgeMalformedError(f"the answer's keys must be 'winner' and 'reason', not {sorted(data)}")
    winner = data["winner"]
    if not isinstance(winner, str) or winner.strip().lower() not in ("a", "b", "tie"):
        raise JudgeMalformedError(f"'winner' must be \"A\", \"B\" or \"tie\", not {winner!r}")
    return winner.strip().lower(), _reason(data)  # type: ignore[return-value]
