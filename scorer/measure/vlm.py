"""``vlm``: a vision-language model grades the render against the prompt with a rubric.

A batched measure. Each judge (one, or several: an ensemble) is shown the render without
``<text>`` (what CLIP sees; never the SVG source) as a PNG, and the prompt, and answers JSON:
a 0–10 score per rubric criterion and a reason. A judge's value is the rubric-weighted mean
of its criteria over 10, the median over ``samples`` answers; the component is the mean over
judges. Answers are cached (:mod:`scorer.judge.cache`), so a re-run makes no calls and gives
the same number. A file a judge gives no usable answer for gets a ``judge_*`` error on the
component (or an error row with ``required: true``); a judge whose key is not in the
environment makes the measure unavailable, with the reason.

The picture is the render at ``render.size``: raise it (512 px in configs/vlm.example.yaml)
to show the judge more detail; ``max_image_px`` only ever shrinks what is sent.
"""

from __future__ import annotations

import functools
import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, ValidationInfo, computed_field, field_validator, model_validator

from ..config import default_cache_dir
from ..errors import ConfigError, ItemError, JudgeError, UsageError
from ..harness.transport import RunOptions
from ..judge.cache import AnswerCache
from ..judge.client import Answer, JudgeClient, picture, question
from ..judge.rubric import Rubric, load_rubric, parse_scores
from ..judge.settings import JudgeEndpoint
from .registry import BatchItem, Measurement, MeasureParams, MeasureUnavailable, batched

Scores = tuple[dict[str, float], str]  # a pointwise answer: criterion → 0–10, and the reason


class VlmParams(MeasureParams):
    path_fields: ClassVar[tuple[str, ...]] = ("cache_dir",)

    judges: tuple[JudgeEndpoint, ...] = Field(
        (JudgeEndpoint(kind="openai", base_url="http://127.0.0.1:11434/v1", model="qwen2.5vl:7b"),),
        min_length=1,
        description="the judges (several: an ensemble, the component is their mean); each: name, kind, base_url, model, api_key_env, "
        "temperature, seed, max_tokens, extra_body, price_input_per_mtok, price_output_per_mtok",
    )
    rubric: str = Field("default", description="a packaged rubric name, or a .yaml file (relative to the config)")
    samples: int = Field(1, ge=1, le=15, description="answers per file and judge; the judge's value is their median")
    max_image_px: int = Field(1024, ge=64, le=4096, description="longer side of the PNG sent at most (renders are shrunk, never enlarged)")
    concurrency: int = Field(4, ge=1, le=256, description="requests in flight at once")
    timeout_s: float = Field(60.0, gt=0, description="per request, whole reply included; then retried, then judge_timeout")
    retries: int = Field(3, ge=0, le=20, description="further attempts after a 408/429/5xx, a timeout or a connection error")
    retry_delay_s: float = Field(1.0, ge=0, description="first backoff, doubled each retry; a server's Retry-After wins")
    max_wait_s: float = Field(120.0, gt=0, description="a Retry-After longer than this fails the file instead")
    batch_size: int = Field(16, ge=1, le=1024, description="files per batch: the requests of a batch run concurrently")
    cache: bool = Field(True, description="keep and reuse answers (judge.sqlite3 in the cache folder)")
    cache_dir: str | None = Field(None, description="the answer cache's folder [default: the result cache's]")
    dry_run: bool = Field(False, description="ask nothing: count the calls a run would make (score --dry-run sets it)")

    @field_validator("rubric", mode="after")
    @classmethod
    def _rubric_loads(cls, value: str, info: ValidationInfo) -> str:
        if value.endswith((".yaml", ".yml")):
            base = (info.context or {}).get("base_dir")
            path = Path(value).expanduser()
            value = str(path if path.is_absolute() or base is None else (Path(base) / path).resolve())
        try:
            _rubric(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> VlmParams:
        names = [j.name for j in self.judges]
        if len(set(names)) != len(names):
            raise ValueError(f"judge names must be unique (give each a name:): {', '.join(names)}")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rubric_sha256(self) -> str:
        """In the config hash: editing the rubric file re-scores, as editing a weight does."""
        return _rubric(self.rubric).sha256

    def options(self) -> RunOptions:
        return RunOptions(self.concurrency, self.timeout_s, self.retries, self.retry_delay_s, self.max_wait_s)


@functools.lru_cache(maxsize=16)
def _rubric(reference: str) -> Rubric:
    return load_rubric(reference)


def open_client(params: VlmParams, *, named_in: str = "the config's vlm params") -> JudgeClient:
    """The judges of ``params``, ready to ask; :class:`UsageError` when a key variable is unset."""
    # A dry run reads the cache too: what it holds is what a run would not have to ask.
    cache = AnswerCache(Path(params.cache_dir) if params.cache_dir else default_cache_dir()) if params.cache else None
    return JudgeClient(params.judges, _rubric(params.rubric), params.options(), cache=cache, dry_run=params.dry_run, named_in=named_in)


def provenance(params: VlmParams) -> dict[str, Any]:
    rubric = _rubric(params.rubric)
    return {
        "judges": [j.describe() for j in params.judges],
        "model": ", ".join(j.model for j in params.judges),
        "rubric": params.rubric if not params.rubric.endswith((".yaml", ".yml")) else Path(params.rubric).name,
        "rubric_version": rubric.version,
        "rubric_sha256": rubric.sha256,
        "samples": params.samples,
        "max_image_px": params.max_image_px,
    }


@dataclass
class VlmJudge:
    """The ``vlm`` measure's BatchScorer: one client for the run, and each judge's values so far
    (for the agreement between judges)."""

    params: VlmParams
    client: JudgeClient
    provenance: dict[str, Any]
    values: dict[str, list[float]] = field(default_factory=dict)  # judge → value per file judged by all
    files: int = 0  # files measured this run (for the cost per 100 files)

    def measure(self, items: Sequence[BatchItem]) -> list[Measurement | ItemError]:
        rubric, samples = self.client.rubric, self.params.samples
        self.files += len(items)
        pictures = [picture(item.image, self.params.max_image_px) for item in items]
        questions = [
            question(judge, rubric, mode="pointwise", prompt=item.prompt, pictures=[shown], sample=s)
            for item, shown in zip(items, pictures, strict=True)
            for judge in self.params.judges
            for s in range(samples)
        ]
        answers = self.client.ask(questions, functools.partial(parse_scores, rubric))
        per_item = len(self.params.judges) * samples
        return [self._combine(answers[i * per_item : (i + 1) * per_item]) for i in range(len(items))]

    def _combine(self, answers: Sequence[Answer[Scores] | JudgeError]) -> Measurement | ItemError:
        """One file's answers (judge-major, then samples) → its measurement, or its first error."""
        failed = next((a for a in answers if isinstance(a, JudgeError)), None)
        if failed is not None:
            return failed
        rubric, samples = self.client.rubric, self.params.samples
        judged: dict[str, dict[str, Any]] = {}
        for judge, start in zip(self.params.judges, range(0, len(answers), samples), strict=True):
            own: list[Answer[Scores]] = answers[start : start + samples]  # type: ignore[assignment]
            overall = [rubric.overall(a.value[0]) for a in own]
            value = statistics.median(overall)
            closest = min(range(len(own)), key=lambda k: (abs(overall[k] - value), k))
            judged[judge.name] = {
                "model": judge.model,
                "value": round(value, 6),
                "criteria": {c.name: statistics.median(a.value[0][c.name] for a in own) for c in rubric.criteria},
                "reason": own[closest].value[1],
                "answers": [a.text for a in own],  # raw, as the judge wrote them
                "input_tokens": sum(a.input_tokens or 0 for a in own),
                "output_tokens": sum(a.output_tokens or 0 for a in own),
            }
            self.values.setdefault(judge.name, []).append(value)
        values = [j["value"] for j in judged.values()]
        mean = sum(values) / len(values)
        details: dict[str, Any] = {"judges": judged, "rubric_version": rubric.version}
        if len(values) > 1:
            details["spread"] = round(max(values) - min(values), 6)
            each = ", ".join(f"{name} {j['value'] * 10:.1f}" for name, j in judged.items())
            explanation = f"mean of {len(values)} judges {mean * 10:.1f}/10 ({each})"
        else:
            [(name, only)] = judged.items()
            criteria = ", ".join(f"{c} {v:g}" for c, v in only["criteria"].items())
            explanation = f"judge {name} ({only['model']}): {mean * 10:.1f}/10 ({criteria}): {only['reason']}"
        if samples > 1:
            explanation += f"; median of {samples} answers each"
        return Measurement(min(1.0, max(0.0, round(mean, 6))), explanation, details)

    def close(self) -> None:
        self.client.close()

    def summary(self) -> list[str]:
        """The run's accounts, and for an ensemble how far its judges agree."""
        return self.client.summary(per=("files", self.files)) + agreement_lines(self.values)


def agreement_lines(values: dict[str, list[float]]) -> list[str]:
    """Per pair of judges: Spearman's rank correlation and the mean absolute difference (in points of 10)."""
    from scipy import stats

    lines = []
    for (a, xs), (b, ys) in itertools.combinations(values.items(), 2):
        n = min(len(xs), len(ys))
        if n < 3 or len(set(xs[:n])) < 2 or len(set(ys[:n])) < 2:
            lines.append(f"judges {a} and {b}: too few distinct values to correlate ({n} files)")
            continue
        rho = stats.spearmanr(xs[:n], ys[:n]).statistic
        gap = sum(abs(x - y) for x, y in zip(xs[:n], ys[:n], strict=True)) / n * 10
        lines.append(f"judges {a} and {b} agree: Spearman {rho:.2f} over {n} files, mean gap {gap:.2f} points of 10")
    return lines


@batched(
    "vlm",
    "a vision-language model grades the render (without <text>, never the SVG source) against the prompt with a "
    "versioned rubric; several judges: their mean; answers cached",
    params=VlmParams,
)
def load_vlm(params: VlmParams) -> VlmJudge:
    try:
        client = open_client(params)
    except UsageError as exc:
        raise MeasureUnavailable(str(exc)) from None
    return VlmJudge(params, client, provenance(params))
