"""What checks look at: one SVG's tree, its geometry and its renders, each computed on demand."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..config import Backend
from ..load import LoadedSvg
from ..render import Raster, render
from .geometry import Geometry, extract_geometry

# A pixel is content when some channel differs from the background colour by more than this
# (0–255): above anti-aliasing fringes and JPEG-like noise, below any deliberate colour.
CONTENT_DELTA = 24
# How far around the canvas the off-canvas render looks, in canvas sizes per side.
OUTER_MARGIN = 1.0


@dataclass
class Drawing:
    svg: LoadedSvg
    prompt: str
    raster: Raster  # the main render: the canvas at the configured size
    backend: Backend = "cairosvg"

    @cached_property
    def geometry(self) -> Geometry:
        return extract_geometry(self.svg.root, self.svg.canvas)

    @cached_property
    def background(self) -> np.ndarray:
        """The most common colour along the render's border, as seen on a white page."""
        return dominant_border_colour(self.raster.on_white)

    @cached_property
    def content_mask(self) -> np.ndarray:
        return differs_from(self.raster.on_white, self.background)

    @cached_property
    def outer_raster(self) -> Raster:
        """The canvas and a margin around it, at the same pixel size: shows off-canvas content."""
        size = max(self.raster.width, self.raster.height)
        return render(self.svg, size, self.svg.canvas.expanded(OUTER_MARGIN), self.backend)


def dominant_border_colour(rgb: np.ndarray) -> np.ndarray:
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    colours, counts = np.unique(border, axis=0, return_counts=True)
    return colours[np.argmax(counts)]


def differs_from(rgb: np.ndarray, colour: np.ndarray) -> np.ndarray:
    return (np.abs(rgb.astype(np.int16) - colour.astype(np.int16)).max(axis=-1)) > CONTENT_DELTA
