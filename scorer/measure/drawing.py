"""What checks look at: one SVG's tree, its geometry and its renders, each computed on demand."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from ..load import SVG_NS, LoadedSvg
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
    rerender: Callable[[LoadedSvg], Raster]  # the canvas of another tree, with the same render settings

    @cached_property
    def raster(self) -> Raster:
        """The canvas alone: what a viewer sees."""
        return self.surround.crop_to(self.svg.canvas)

    @cached_property
    def picture(self) -> Raster:
        """The canvas without its ``<text>``: what CLIP is shown.

        CLIP reads words, so a caption naming the subject would count as drawing it (the
        typographic attack); people judge the drawing. Re-rendered only when there is text.
        """
        if not self.geometry.texts:
            return self.raster
        return self.rerender(without_text(self.svg))

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
