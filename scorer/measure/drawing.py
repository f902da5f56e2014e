"""What checks look at: one SVG's tree, its geometry and its renders, each computed on demand."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..load import LoadedSvg
from ..render import Raster
from .geometry import Geometry, extract_geometry

# A pixel is content when some channel differs from the background colour by more than this
# (0–255): above anti-aliasing fringes and JPEG-like noise, below any deliberate colour.
CONTENT_DELTA = 24
# How far around the canvas the render looks (for off-canvas content), in canvas sizes per side.
OUTER_MARGIN = 1


@dataclass
class Drawing:
    svg: LoadedSvg
    prompt: str
    surround: Raster  # the canvas and OUTER_MARGIN around it, at the configured scale

    @cached_property
    def raster(self) -> Raster:
        """The canvas alone: what a viewer sees, and what CLIP is shown."""
        return self.surround.crop_to(self.svg.canvas)

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


def dominant_border_colour(rgb: np.ndarray) -> np.ndarray:
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    colours, counts = np.unique(border, axis=0, return_counts=True)
    return colours[np.argmax(counts)]


def differs_from(rgb: np.ndarray, colour: np.ndarray) -> np.ndarray:
    return (np.abs(rgb.astype(np.int16) - colour.astype(np.int16)).max(axis=-1)) > CONTENT_DELTA
