"""Stages 1–3 for one file, as one pure function: bytes → structural components + render.

This is what runs inside a worker process (:mod:`scorer.isolation`). CLIP is not here: it
runs in the parent, which holds the model once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from .config import Config
from .load import load_svg
from .measure.drawing import OUTER_MARGIN, Drawing
from .measure.registry import available_checks
from .record import Component, RenderInfo
from .render import render


@dataclass(frozen=True)
class FileTask:
    data: bytes
    prompt: str


@dataclass(frozen=True)
class Analysis:
    components: dict[str, Component]
    image: np.ndarray  # the render on white without <text>, (H, W, 3) uint8: what CLIP sees
    render: RenderInfo


def make_analyzer(config: Config) -> Callable[[FileTask], Analysis]:
    """Bind ``config`` once (check lookup, parameter validation) and return the per-file function."""
    known = available_checks()
    plan = [
        (name, known[name], known[name].parse_params(cfg.params), cfg.weight)
        for name, cfg in config.checks.items()
    ]

    def analyze(task: FileTask) -> Analysis:
        svg = load_svg(task.data, config.limits)
        size, backend = config.render.size, config.render.backend
        drawing = Drawing(
            svg, task.prompt, render(svg, size, margin=OUTER_MARGIN, backend=backend), partial(render, size=size, backend=backend)
        )
        raster = drawing.raster
        components = {}
        for name, check, params, weight in plan:
            if not check.applies_to(task.prompt):
                components[name] = Component(
                    None, weight, f"not applicable: the prompt does not ask for {check.subject}"
                )
                continue
            found = check.fn(drawing, params)
            components[name] = Component(round(found.value, 6), weight, found.explanation, found.details)
        info = RenderInfo(raster.width, raster.height, raster.sha256())
        return Analysis(components, drawing.picture.on_white, info)

    return analyze
