"""Craft checks: what people reward in a drawing whatever it shows — detail, layering, shading —
and whether it keeps the format a prompt asks for.

Fitted against human pairwise votes on frontier-model drawings (``svgscore calibrate``): on
prompts nobody tuned on, soft shading and built-up layers predicted the human's pick better than
counting elements did. Each reads only what a viewer can see, so the cheap ways to inflate it
do nothing:

* duplicated elements and bloat (one shape ×1000) — parts are told apart by their outline at
  pixel resolution, so copies of a shape are one part;
* invisible elements (zero opacity, off the canvas, hidden under other shapes, same colour as
  what lies below) — a part counts only when the render shows its outline as an edge;
* noise (thousands of random shapes) — past ``max_parts`` visible parts a drawing is treated as
  noise and the value falls to 0 at twice that; soft shading only counts away from hard edges,
  so a crowd of tiny shapes blending into each other is not shading.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from pydantic import Field, model_validator

from .drawing import CONTENT_DELTA, Drawing
from .geometry import Shape
from .registry import Measurement, MeasureParams, NoParams, check

# scipy and scikit-image are imported inside the checks that use them: the scoring process binds
# these checks (to validate their parameters) but only workers run them, and importing both there
# cost ~0.2 s of every run's start-up.

# Sobel magnitude (on [0, 1] channels) above which two neighbouring pixels show an edge: a
# 10 % colour step; anti-aliasing and gentle gradients stay below it.
EDGE_STEP = 0.1
# Sobel magnitude band of a soft transition in luminance: above render noise and flat fills,
# below a drawn edge. Gradients, blended transparency and soft shadows fall inside it.
SOFT_BAND = (0.002, 0.03)
# Largest patch of soft transition (pixels at the 224 px render) that is a speck, not shading.
SOFT_MAX_SPECK = 15


@dataclass(frozen=True)
class Parts:
    """The drawing's visible parts: distinct outlines the render shows."""

    visible: tuple[Shape, ...]
    shapes: int  # drawn shapes in the tree, after <use> expansion
    distinct: int  # distinct outlines among them (copies merged)


def visible_parts(drawing: Drawing, min_shown: float) -> Parts:
    """Distinct drawn shapes whose outline the render shows on at least ``min_shown`` of it.

    A closed shape shows where the colour just inside its outline differs from the colour just
    outside; an open one (a stroke) where its line is an edge. A shape under others, fully
    transparent, off the canvas or painted like its surroundings shows nowhere — also when it
    sits on another shape's edge — and a copy of a shape has the same outline.
    """
    from scipy.ndimage import binary_dilation
    from skimage.filters import sobel

    raster = drawing.raster
    canvas = drawing.svg.canvas
    rgb = raster.on_white.astype(np.int16)
    colour = np.max([sobel(rgb[..., c] / 255.0) for c in range(3)], axis=0)
    edges = binary_dilation(colour > EDGE_STEP, iterations=1)  # a stroke's centreline is within a pixel of its edges
    size = np.array([raster.width, raster.height])
    seen: set[bytes] = set()
    visible = []
    for shape in drawing.geometry.shapes:
        points = (shape.points - (canvas.x, canvas.y)) * raster.scale
        pixels = np.round(points).astype(np.int64)
        # The set of pixels the outline passes, as one int per pixel (a 1-D unique is far cheaper than rows).
        key = np.unique(pixels[:, 0] * (1 << 32) + pixels[:, 1]).tobytes()
        if key in seen:
            continue
        seen.add(key)
        if shape.closed:
            shown = _shown_across(points, rgb, size)
        else:
            inside = ((pixels >= 0) & (pixels < size)).all(axis=1)
            shown = edges[pixels[inside, 1], pixels[inside, 0]].sum() / len(pixels)
        if shown >= min_shown:
            visible.append(shape)
    return Parts(tuple(visible), len(drawing.geometry.shapes), len(seen))


def _shown_across(points: np.ndarray, rgb: np.ndarray, size: np.ndarray, step: float = 1.5) -> float:
    """Share of a closed outline where the render's colour changes across it (``step`` px in and out).

    Points off the canvas count as unseen: a shape mostly outside is mostly not drawn.
    """
    centre = points.mean(axis=0)
    normal = points - centre
    length = np.hypot(normal[:, 0], normal[:, 1])
    normal = normal / np.where(length > 0, length, 1.0)[:, None]
    inner = np.round(points - step * normal).astype(np.int64)
    outer = np.round(points + step * normal).astype(np.int64)
    inside = ((inner >= 0) & (inner < size) & (outer >= 0) & (outer < size)).all(axis=1)
    if not inside.any():
        return 0.0
    a = rgb[inner[inside, 1], inner[inside, 0]]
    b = rgb[outer[inside, 1], outer[inside, 0]]
    return float((np.abs(a - b).max(axis=1) > CONTENT_DELTA).sum() / len(points))


def noise_factor(parts: int, most: int) -> float:
    """1 up to ``most`` visible parts, falling linearly to 0 at twice that: thousands of parts are
    noise, not care, and adding them to a drawing must not pay."""
    return float(np.clip(2.0 - parts / most, 0.0, 1.0))


def _noise_note(parts: int, factor: float) -> str:
    return f"; ×{factor:.2f}: {parts} visible parts is noise rather than detail" if factor < 1 else ""


class PartsParams(MeasureParams):
    min_shown: float = Field(0.7, gt=0, le=1, description="share of a shape's outline the render must show (a colour change across it) for it to count as visible")
    max_parts: int = Field(500, ge=2, description="visible parts beyond which a drawing counts as noise: the value falls to 0 at twice this")


class DetailParams(PartsParams):
    full_at: int = Field(150, ge=2, description="visible parts at which a drawing counts as fully detailed")

    @model_validator(mode="after")
    def _ordered(self) -> DetailParams:
        if self.full_at > self.max_parts:
            raise ValueError("full_at must not exceed max_parts")
        return self


@check(
    "detail",
    "level of detail: distinct parts the render actually shows (copies, hidden and off-canvas shapes do not count), "
    "each doubling worth the same up to full_at",
    params=DetailParams,
)
def detail(drawing: Drawing, params: DetailParams) -> Measurement:
    parts = drawing.shared(visible_parts, params.min_shown)  # once per file for all craft checks
    n = len(parts.visible)
    factor = noise_factor(n, params.max_parts)
    # Diminishing returns: 10 → 20 parts matters as much as 75 → 150.
    value = min(1.0, math.log1p(n) / math.log1p(params.full_at)) * factor
    unseen = parts.distinct - n
    copies = parts.shapes - parts.distinct
    return Measurement(
        value,
        f"{n} visible parts (full marks at {params.full_at}); not counted: {copies} copies of another shape, "
        f"{unseen} shapes the render does not show (hidden, transparent or off-canvas){_noise_note(n, factor)}",
        {"visible_parts": n, "copies": copies, "unseen": unseen},
    )


class LayeringParams(PartsParams):
    full_at: float = Field(4.0, gt=1, description="layers stacked over the most built-up tenth of the drawing that earn full marks")
    resolution: int = Field(96, ge=16, le=512, description="grid cells along the canvas's longer side for the stacking count")


@check(
    "layering",
    "layering and depth: how many visible closed shapes are stacked over the most built-up tenth of the "
    "drawing (body, patch, eye, highlight), from 1 (flat) to full_at",
    params=LayeringParams,
)
def layering(drawing: Drawing, params: LayeringParams) -> Measurement:
    from skimage.draw import polygon as fill_polygon

    parts = drawing.shared(visible_parts, params.min_shown)
    closed = [s for s in parts.visible if s.closed]
    canvas = drawing.svg.canvas
    scale = params.resolution / max(canvas.width, canvas.height)
    depth = np.zeros((max(1, round(canvas.height * scale)), max(1, round(canvas.width * scale))), dtype=np.int32)
    for shape in closed:
        rows, cols = fill_polygon((shape.points[:, 1] - canvas.y) * scale, (shape.points[:, 0] - canvas.x) * scale, depth.shape)
        depth[rows, cols] += 1
    covered = depth[depth > 0]
    stacked = float(np.percentile(covered, 90)) if covered.size else 0.0
    factor = noise_factor(len(parts.visible), params.max_parts)
    value = float(np.clip((stacked - 1.0) / (params.full_at - 1.0), 0.0, 1.0)) * factor
    return Measurement(
        value,
        f"{stacked:g} visible closed shapes stacked over the most built-up tenth of the drawing "
        f"(1 is flat, full marks at {params.full_at:g}){_noise_note(len(parts.visible), factor)}",
        {"layers_p90": stacked, "closed_parts": len(closed)},
    )


class ShadingParams(PartsParams):
    full_at: float = Field(0.5, gt=0, le=1, description="share of the drawing in soft transitions that earns full marks")


@check(
    "shading",
    "colour and shading: share of the drawn content where colour changes softly (gradients, blended "
    "transparency, soft shadows) rather than in flat fills and hard edges",
    params=ShadingParams,
)
def shading(drawing: Drawing, params: ShadingParams) -> Measurement:
    from scipy.ndimage import binary_dilation
    from skimage.color import rgb2gray
    from skimage.filters import sobel
    from skimage.morphology import remove_small_objects

    content = drawing.content_mask
    if not content.any():
        return Measurement(0.0, "nothing drawn", {"soft_share": 0.0})
    strength = sobel(rgb2gray(drawing.raster.on_white))
    # Soft only away from hard edges: the anti-aliased fringe of an edge, and a crowd of tiny
    # shapes blending into each other (noise), are not shading.
    near_edge = binary_dilation(strength >= SOFT_BAND[1], iterations=2)
    soft = (strength > SOFT_BAND[0]) & (strength < SOFT_BAND[1]) & ~near_edge
    # Shading is an area: specks of softness between noise shapes are not.
    soft = remove_small_objects(soft, max_size=SOFT_MAX_SPECK)
    share = float((soft & content).sum() / content.sum())
    parts = len(drawing.shared(visible_parts, params.min_shown).visible)
    factor = noise_factor(parts, params.max_parts)
    return Measurement(
        min(1.0, share / params.full_at) * factor,
        f"{share:.0%} of the drawn content is softly shaded (gradients, blending); full marks at {params.full_at:.0%}"
        f"{_noise_note(parts, factor)}",
        {"soft_share": round(share, 4)},
    )


_VIEWBOX = re.compile(r"viewbox\W*(-?[\d.]+)[\s,]+(-?[\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)", re.IGNORECASE)


@check(
    "prompt_viewbox",
    "1 when the file's viewBox is the one the prompt states (\"viewBox 0 0 2000 1200\"), else 0",
    subjects=(("viewbox",),),
)
def prompt_viewbox(drawing: Drawing, _: NoParams) -> Measurement:
    asked = _VIEWBOX.search(drawing.prompt)
    if asked is None:
        return Measurement(1.0, "the prompt names a viewBox but no four numbers for it", {})
    wanted = tuple(float(v) for v in asked.groups())
    canvas = drawing.svg.canvas
    found = (canvas.x, canvas.y, canvas.width, canvas.height)
    match = all(math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-6) for a, b in zip(wanted, found, strict=True))
    return Measurement(
        1.0 if match else 0.0,
        f"viewBox {' '.join(f'{v:g}' for v in found)}; the prompt asks for {' '.join(f'{v:g}' for v in wanted)}",
        {"asked": list(wanted), "found": list(found)},
    )
