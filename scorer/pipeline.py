"""Stages 1–3 for one file, as one pure function: bytes → per-file components + render.

This is what runs inside a worker process (:mod:`scorer.isolation`). Batched measures (CLIP,
model judges) are not here: they run in the parent, which holds their models once.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from .config import Config
from .load import load_svg
from .measure.bind import Overrides, bind
from .measure.drawing import OUTER_MARGIN, Drawing, StageClock
from .record import Component, RenderInfo
from .render import render


@dataclass(frozen=True)
class FileTask:
    data: bytes
    prompt: str


@dataclass(frozen=True)
class Analysis:
    components: dict[str, Component]
    image: np.ndarray  # the render on white without <text>, (H, W, 3) uint8: what batched measures see
    render: RenderInfo
    seconds: dict[str, float]  # CPU seconds by stage (render, intermediates, each measure): for make bench, never scored


def make_analyzer(config: Config, overrides: Overrides | None = None, import_path: Sequence[str] = ()) -> Callable[[FileTask], Analysis]:
    """Bind ``config`` once (plugins imported, measures looked up, parameters validated) and
    return the per-file function. ``import_path`` is the parent's ``sys.path``, so a plugin the
    parent imported is importable here too."""
    sys.path.extend(p for p in import_path if p not in sys.path)
    plan = bind(config, overrides)
    for bound in plan.per_file:
        if bound.measure.setup is not None:
            bound.measure.setup(bound.params)  # a model that will not load fails this worker's start

    def analyze(task: FileTask) -> Analysis:
        clock = StageClock()
        svg = clock.run("load", lambda: load_svg(task.data, config.limits))
        size, backend = config.render.size, config.render.backend
        surround = clock.run("render", lambda: render(svg, size, margin=OUTER_MARGIN, backend=backend))
        drawing = Drawing(svg, task.prompt, surround, partial(render, size=size, backend=backend), clock)
        raster = drawing.raster
        components = {}
        for bound in plan.per_file:
            measure = bound.measure
            if not measure.applies_to(task.prompt):
                components[bound.name] = Component(None, bound.weight, f"not applicable: the prompt does not ask for {measure.subject}")
                continue
            found = clock.run(bound.name, partial(measure.fn, drawing, bound.params))  # type: ignore[arg-type]  (per-file measures have fn)
            components[bound.name] = Component(round(found.value, 6), bound.weight, found.explanation, found.details)
        info = RenderInfo(raster.width, raster.height, raster.sha256())
        return Analysis(components, drawing.picture.on_white, info, clock.seconds)

    return analyze
