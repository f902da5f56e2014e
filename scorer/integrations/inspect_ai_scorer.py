"""svgscore as an inspect_ai scorer (the ``inspect`` extra: ``pip install 'svgscore[inspect]'``).

>>> from inspect_ai import Task, eval
>>> from inspect_ai.dataset import Sample
>>> from inspect_ai.solver import generate
>>> from scorer.integrations.inspect_ai_scorer import svgscore
>>> task = Task(dataset=[Sample(input="Draw a pelican riding a bicycle as SVG.", target="a pelican riding a bicycle")],
...             solver=generate(), scorer=svgscore("structural"))

Named ``inspect_ai_scorer`` rather than ``inspect`` so that it never shadows the standard
library's ``inspect`` inside this package.
"""

from __future__ import annotations

import asyncio
import atexit
from typing import Any

try:
    from inspect_ai.scorer import Score, Target, mean, scorer, stderr
    from inspect_ai.scorer import Scorer as InspectScorer
    from inspect_ai.solver import TaskState
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(f"the svgscore inspect_ai scorer needs inspect_ai ({exc.name} is missing): pip install 'svgscore[inspect]'") from exc

from ..api import ConfigSource, Scorer
from ..record import ScoreResult
from .batching import MicroBatcher
from .rl import reply_item


@scorer(metrics=[mean(), stderr()])
def svgscore(config: ConfigSource = None, **scorer_options: Any) -> InspectScorer:
    """Score the SVG in each model reply with svgscore: ``Score.value`` is the score in [0, 100]
    (0 for a reply with no usable SVG, as ``svgscore compare`` counts error rows).

    The drawing is judged against the sample's ``target`` when it has one (put the subject
    there, e.g. "a pelican riding a bicycle"), else against the sample's input text. ``answer``
    is the SVG that was scored, ``explanation`` the summary and one line per component, and
    ``metadata`` the full svgscore record — its ``components`` are the component table.

    One :class:`scorer.Scorer` serves the whole eval (models load once); samples scored at the
    same time share a scoring pass, so CLIP runs in batches. ``scorer_options`` go to it
    (``jobs=``, ``params=``, ``plugins=``, ``cache=``).
    """
    held = Scorer(config, **scorer_options)
    batcher = MicroBatcher(held)

    def close() -> None:
        batcher.close()
        held.close()

    atexit.register(close)  # inspect has no scorer teardown; the workers end with the process

    async def score(state: TaskState, target: Target) -> Score:
        prompt = target.text.strip() or state.input_text
        item = reply_item(state.output.completion, prompt, truncated=state.output.stop_reason == "max_tokens")
        [result] = await asyncio.wrap_future(batcher.submit([item]))
        return _score(result, None if item.data is None else item.data.decode("utf-8"))

    return score


def _score(result: ScoreResult, svg: str | None) -> Score:
    record = result.to_dict()
    lines = [result.summary]
    for name, component in record["components"].items():
        value = "n/a" if component["value"] is None else f"{component['value']:.2f}"
        lines.append(f"{name}: {value} (weight {component['weight']:g}) — {component['explanation']}")
    usable = result.status == "ok" and result.score is not None
    return Score(value=result.score if usable else 0.0, answer=svg, explanation="\n".join(lines), metadata=record)
