"""What checks look at: one SVG's tree, its geometry and its renders, each computed on demand."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, TypeVar

import numpy as np

from ..load import SVG_NS, LoadedSvg
from ..render import Raster
from .geometry import Geometry, extract_geometry

# A pixel is content when some channel differs from the background colour by more than this
# (0–255): above anti-aliasing fringes and JPEG-like noise, below any deliberate colour.
CONTENT_DELTA = 24
# How far around the canvas the render looks (for off-canvas content), in canvas sizes per side.
OUTER_MARGIN = 1

T = TypeVar("T")


@dataclass
class StageClock:
    """CPU seconds by stage for one file, each stage booked *exclusive* of the stages it
    triggered (a measure that first needs ``geometry`` is not charged for it). For ``make
    bench``'s per-stage cost; never part of a score."""

    seconds: dict[str, float] = field(default_factory=dict)
    _booked: float = 0.0

    def run(self, stage: str, fn: Callable[[], T]) -> T:
        booked, started = self._booked, time.process_time()
        try:
            return fn()
        finally:
            own = time.process_time() - started - (self._booked - booked)
            self.seconds[stage] = self.seconds.get(stage, 0.0) + own
            self._booked += own


def _intermediate(fn: Callable[[Drawing], T]) -> cached_property[T]:
    """A cached property of :class:`Drawing` whose cost is its own stage on the clock."""

    def compute(self: Drawing) -> T:
        return self.clock.run(fn.__name__, lambda: fn(self))

    compute.__doc__ = fn.__doc__
    return cached_property(compute)


@dataclass
class Drawing:
    svg: LoadedSvg
    prompt: str
    surround: Raster  # the canvas and OUTER_MARGIN around it, at the configured scale
    rerender: Callable[[LoadedSvg], Raster]  # the canvas of another tree, with the same render settings
    clock: StageClock = field(default_factory=StageClock)
    _shared: dict[Hashable, Any] = field(default_factory=dict, repr=False)

    def shared(self, fn: Callable[..., T], *args: Hashable) -> T:
        """``fn(self, *args)``, computed once per file: an intermediate several measures need
        (the wheel search of bicycle_present and rider_on_bicycle), with the arguments that
        decide it. Costed as its own stage, named after ``fn``."""
        key = (fn, *args)
        if key not in self._shared:
            self._shared[key] = self.clock.run(fn.__name__, lambda: fn(self, *args))
        return self._shared[key]

    @cached_property
    def raster(self) -> Raster:
        """The canvas alone: what a viewer sees."""
        return self.surround.crop_to(self.svg.canvas)

    @_intermediate
    def picture(self) -> Raster:
        """The canvas without its ``<text>``: what CLIP is shown.

        CLIP reads words, so a caption naming the subject would count as drawing it (the
        typographic attack); people judge the drawing. Re-rendered only when there is text.
        """
        if not self.geometry.texts:
            return self.raster
        return self.rerender(without_text(self.svg))

    @_intermediate
    def geometry(self) -> Geometry:
        return extract_geometry(self.svg.root, self.svg.canvas)

    @_intermediate
    def background(self) -> np.ndarray:
        """The most common colour along the render's border, as seen on a white page."""
        return dominant_border_colour(self.raster.on_white)

    @_intermediate
    def content_mask(self) -> np.ndarray:
        return differs_from(self.raster.on_white, self.background)


def without_text(svg: LoadedSvg) -> LoadedSvg:
    root = copy.deepcopy(svg.root)
    for text in list(root.iter(f"{{{SVG_NS}}}text")):
        text.getparent().remove(text)
    return replace(svg, root=root)


def dominant_border_colour(rgb: np.ndarray) -> np.ndarray:
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    colours, counts = np.unique(border, axis=0, return_counts=True)
    return colours[np.argmax(counts)]


def differs_from(rgb: np.ndarray, colour: np.ndarray) -> np.ndarray:
    return (np.abs(rgb.astype(np.int16) - colour.astype(np.int16)).max(axis=-1)) > CONTENT_DELTA
