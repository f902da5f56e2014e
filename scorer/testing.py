"""Test helpers for projects that generate SVG: fail a test when a drawing scores too low.

>>> from scorer.testing import assert_svg_score
>>> def test_logo_still_looks_like_a_pelican_on_a_bicycle():
...     assert_svg_score("out/logo.svg", min=60, config={"clip": {"enabled": False}})

With no ``config`` the built-in default is used, which wants CLIP weights
(``SVGSCORE_CLIP_WEIGHTS``); on CI machines without them pass ``{"clip": {"enabled": False}}``
or a structural YAML config, so the score does not depend on a download.
"""

from __future__ import annotations

import atexit
import json
import os
from typing import Any

from .api import ConfigSource, Scorer
from .config import DEFAULT_PROMPT, Config
from .record import ScoreResult

# One Scorer per distinct config for the whole test session: starting worker processes costs
# a second or two, paid once rather than per assertion. Closed when the interpreter exits.
_scorers: dict[str, Scorer] = {}


@atexit.register
def _close_scorers() -> None:
    for scorer in _scorers.values():
        scorer.close()
    _scorers.clear()


def _scorer(config: ConfigSource, options: dict[str, Any]) -> Scorer:
    source = config.model_dump() if isinstance(config, Config) else os.fspath(config) if isinstance(config, os.PathLike) else config
    key = json.dumps([source, options], sort_keys=True, default=str)
    if key not in _scorers:
        _scorers[key] = Scorer(config, jobs=1, **options)
    return _scorers[key]


def assert_svg_score(
    path: str | os.PathLike[str],
    min: float,  # the name the call site reads best with (min=60), though it shadows the builtin
    *,
    prompt: str = DEFAULT_PROMPT,
    config: ConfigSource = None,
    **scorer_options: Any,
) -> ScoreResult:
    """Score ``path`` against ``prompt`` and raise ``AssertionError`` unless it scored at least
    ``min`` (0–100). The message lists every component with its value, weight and explanation,
    so a failing test says *what* got worse. Returns the result for further checks.

    ``scorer_options`` go to :class:`scorer.Scorer` (``params=``, ``plugins=``); calls with
    the same config and options share one scorer, so its workers start once per session.
    """
    __tracebackhide__ = True  # pytest: show the caller's line, not this helper's
    result = _scorer(config, scorer_options).score_file(path, prompt)
    if result.ok and result.score is not None and result.score >= min:
        return result
    raise AssertionError(failure_message(result, min))


def failure_message(result: ScoreResult, minimum: float) -> str:
    """Why ``result`` does not reach ``minimum``, component by component."""
    name = result.path or "<memory>"
    if result.error is not None:
        return f"{name} could not be scored ({result.error.code}: {result.error.message}); needed at least {minimum:g}"
    score = "no score" if result.score is None else f"{result.score:.1f}"
    lines = [f"{name} scored {score}, below the minimum {minimum:g} (prompt: {result.prompt!r})", f"  {result.summary}"]
    width = max((len(n) for n in result.components), default=0)
    for component_name, c in result.components.items():
        value = "n/a" if c.value is None else f"{c.value:.2f}"
        lines.append(f"  {component_name:<{width}}  {value:>4} × {c.weight:<4g}  {c.explanation}")
    return "\n".join(lines)
