"""svgscore as the reward of an RL trainer: a batch reward function for TRL's ``GRPOTrainer``
and a one-sample ``compute_score`` in verl's signature.

**Reward range.** ``score / 100``, in [0, 1]: the same number as ``svgscore score`` prints,
scaled to the range most reward functions share, so it mixes with format or length rewards
without rescaling.

**Unusable completions** — no ``<svg>`` in the reply (``no_svg``), an SVG cut off at the token
limit (``truncated_output``), or an SVG that is an error row (``parse_error``, ``unsafe_svg``,
``too_large``, ``render_timeout``, ...) — get :data:`UNUSABLE_REWARD`, 0.0: the reward of a blank
or gated drawing, the worst a drawing can do. Pass ``unusable=-1.0`` (say) to punish a broken
format harder than a bad drawing. It is always a number: TRL reads ``None`` as "this function
does not apply", which would silently drop exactly the samples that most need a signal.

Nothing here imports TRL: the contract is plain keyword arguments and a list of floats.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..api import ConfigSource, Scorer
from ..config import DEFAULT_PROMPT
from ..errors import SvgScoreError
from ..harness.extract import extract_svg
from ..inputs import ScoreItem
from ..record import ScoreResult

UNUSABLE_REWARD = 0.0

# A TRL prompt or completion: plain text, or a conversation (a list of {"role", "content"}).
Text = str | Sequence[Mapping[str, Any]]


def message_text(value: Text, role: str | None = None) -> str:
    """The text of a prompt or completion: a string as is; of a conversation, the last message
    (of ``role``, when given). Multimodal content parts contribute their text parts."""
    if isinstance(value, str):
        return value
    messages = [m for m in value if role is None or m.get("role") == role]
    if not messages:
        return ""
    content = messages[-1].get("content") or ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if isinstance(part, Mapping) and part.get("type") == "text")


def reply_item(reply: str, prompt: str, *, truncated: bool = False) -> ScoreItem:
    """The item that scores the SVG in a model's ``reply`` against ``prompt``.

    A reply without a usable SVG becomes an item that already carries its error
    (``no_svg``/``truncated_output``), so it still gets its own record, in order.
    """
    try:
        svg = extract_svg(reply, truncated=truncated).svg
    except SvgScoreError as exc:
        return ScoreItem(path=None, prompt=prompt, error=exc)  # type: ignore[arg-type]  (an item error by construction)
    return ScoreItem(path=None, prompt=prompt, data=svg.encode("utf-8"))


def reward_of(result: ScoreResult, unusable: float = UNUSABLE_REWARD) -> float:
    """``score / 100`` for a scored drawing; ``unusable`` for an error row or an unmeasurable one."""
    if result.status != "ok" or result.score is None:
        return unusable
    return result.score / 100.0


class SvgReward:
    """A reward function for TRL's ``GRPOTrainer`` (``reward_funcs=[SvgReward(...)]``).

    The trainer calls it with ``prompts`` and ``completions`` (strings, or conversations) and
    every other dataset column as a keyword argument, one value per completion. The drawing is
    judged against the ``prompt_column`` column when the dataset has one (e.g. ``subject:
    "a pelican riding a bicycle"`` beside a ``prompt`` that also says "answer with one SVG"),
    else against the prompt's text (a conversation's last user message).

    One :class:`scorer.Scorer` is held for the whole run: worker processes start and the CLIP
    model loads once, on the first batch, and every batch is scored in one pass (CLIP batched).
    After each call :attr:`last_records` holds the batch's records (``ScoreResult.to_dict()``),
    and when the trainer offers ``log_extra``/``log_metric`` (TRL ≥ 1.0) each completion's
    status and summary go into its completions table and the unusable share into its metrics.
    """

    def __init__(
        self,
        config: ConfigSource = None,
        *,
        prompt_column: str = "subject",
        unusable: float = UNUSABLE_REWARD,
        **scorer_options: Any,
    ) -> None:
        """``scorer_options`` go to :class:`scorer.Scorer` (``jobs=``, ``params=``, ``plugins=``, ``cache=``)."""
        self.__name__ = "svgscore"  # TRL names the reward's log columns after the callable
        self.prompt_column = prompt_column
        self.unusable = unusable
        self.last_records: list[dict[str, Any]] = []
        self._scorer = Scorer(config, **scorer_options)
        # A Scorer runs one scoring pass at a time; trainers may call from several threads.
        self._lock = threading.Lock()

    def __call__(self, prompts: Sequence[Text], completions: Sequence[Text], **kwargs: Any) -> list[float]:
        subjects = kwargs.get(self.prompt_column)
        judged = [
            str(subjects[i]) if subjects is not None and subjects[i] else message_text(prompt, role="user") or DEFAULT_PROMPT
            for i, prompt in enumerate(prompts)
        ]
        items = [reply_item(message_text(completion, role="assistant"), prompt) for completion, prompt in zip(completions, judged, strict=True)]
        results = self.score(items)
        self.last_records = [result.to_dict() for result in results]
        rewards = [reward_of(result, self.unusable) for result in results]
        _log(results, rewards, self.unusable, kwargs.get("log_extra"), kwargs.get("log_metric"))
        return rewards

    def score(self, items: Sequence[ScoreItem]) -> list[ScoreResult]:
        """Score a batch through the held scorer, in order."""
        with self._lock:
            return list(self._scorer.score_items(items))

    def close(self) -> None:
        self._scorer.close()

    def __enter__(self) -> SvgReward:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _log(
    results: Sequence[ScoreResult],
    rewards: Sequence[float],
    unusable: float,
    log_extra: Callable[[str, list[Any]], None] | None,
    log_metric: Callable[[str, float], None] | None,
) -> None:
    """Per-completion columns and a batch metric, through the trainer's own logging hooks."""
    if callable(log_extra):
        log_extra("svgscore_status", [r.error.code if r.error else r.status for r in results])
        log_extra("svgscore_summary", [r.summary for r in results])
    if callable(log_metric) and results:
        log_metric("svgscore/unusable_fraction", sum(r.status != "ok" or r.score is None for r in results) / len(results))


# -- one sample at a time (verl's ``custom_reward_function``) -----------------------------------

_shared: SvgReward | None = None
_shared_lock = threading.Lock()

CONFIG_ENV = "SVGSCORE_CONFIG"


def compute_score(data_source: Any, solution_str: str, ground_truth: Any, extra_info: Mapping[str, Any] | None = None, **_: Any) -> float:
    """verl's reward signature: the reward of one decoded response, in [0, 1] (unusable: 0.0).

    The drawing is judged against ``ground_truth`` when it is a non-empty string (put the
    subject, e.g. "a pelican riding a bicycle", in the dataset's ``reward_model.ground_truth``),
    else ``extra_info["prompt"]``, else the default prompt. ``data_source`` is not used.

    Cost: one process-wide :class:`scorer.Scorer` (config from ``$SVGSCORE_CONFIG``, else the
    built-in default) is started on the first call and reused, so each later call costs one
    render and its checks (~0.06 s with CLIP off) — but with CLIP on, one sample is a whole CLIP
    batch (padded to the clip measure's ``batch_size`` for determinism), several times the per-sample cost of
    a batched call, and calls are serialised. For one-at-a-time trainers with CLIP, run
    ``svgscore serve`` and call it instead: it micro-batches concurrent requests into shared
    CLIP batches.
    """
    global _shared
    if isinstance(ground_truth, str) and ground_truth.strip():
        prompt = ground_truth
    else:
        prompt = str((extra_info or {}).get("prompt") or DEFAULT_PROMPT)
    with _shared_lock:
        if _shared is None:
            _shared = SvgReward(os.environ.get(CONFIG_ENV) or None)
            atexit.register(_shared.close)  # stop the worker processes with the trainer
        reward = _shared
    [result] = reward.score([reply_item(solution_str, prompt)])
    return reward_of(result, reward.unusable)
