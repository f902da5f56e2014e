"""The built-in structural checks. Each reads geometry or pixels, never labels."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import Field, model_validator

from ..load import Canvas
from ..render import on_white
from .drawing import Drawing, differs_from
from .geometry import Shape, iter_circles
from .registry import Measurement, MeasureParams, NoParams, check

BICYCLE_WORDS = ("bicycle", "bicycles", "bike", "bikes", "biking", "cycling", "cyclist", "cyclists")
RIDING_WORDS = ("riding", "ride", "rides", "rider", "on", "pedaling", "pedalling", "cycling", "biking")


@check("parses", "the file is well-formed SVG as written (0.5 if it needed a browser-tolerated repair)")
def parses(drawing: Drawing, _: NoParams) -> Measurement:
    if drawing.svg.strict:
        return Measurement(1.0, "well-formed XML with an <svg> root, no repair needed")
    return Measurement(0.5, f"parsed only after a repair browsers also make: {drawing.svg.repair}")


@check("renders", "cairosvg rasterized the file (failures are error rows; use as a gate)")
def renders(drawing: Drawing, _: NoParams) -> Measurement:
    r = drawing.raster
    return Measurement(1.0, f"rendered at {r.width}×{r.height} px", {"width": r.width, "height": r.height})


class NotBlankParams(MeasureParams):
    full_at: float = Field(0.02, gt=0, le=1, description="content share of the canvas that counts as fully non-blank")


@check("not_blank", "share of the canvas that differs from the background colour", params=NotBlankParams)
def not_blank(drawing: Drawing, params: NotBlankParams) -> Measurement:
    share = float(drawing.content_mask.mean())
    colour = "#{:02x}{:02x}{:02x}".format(*map(int, drawing.background))
    return Measurement(
        min(1.0, share / params.full_at),
        f"{share:.1%} of pixels differ from the background {colour} (full marks at {params.full_at:.0%})",
        {"content_share": round(share, 6), "background": colour},
    )


class ElementCountParams(MeasureParams):
    full_at: int = Field(30, ge=2, description="elements from which a drawing counts as fully detailed")
    max_elements: int = Field(2000, ge=2, description="elements beyond which a drawing counts as noise")

    @model_validator(mode="after")
    def _ordered(self) -> ElementCountParams:
        if self.full_at > self.max_elements:
            raise ValueError("full_at must not exceed max_elements")
        return self


@check(
    "element_count",
    "drawn elements (after <use> expansion) in a sane range: a log ramp up to full_at, decay past max_elements",
    params=ElementCountParams,
)
def element_count(drawing: Drawing, params: ElementCountParams) -> Measurement:
    geometry = drawing.geometry
    n = len(geometry.shapes) + len(geometry.texts)
    if n < params.full_at:
        # Each doubling of detail counts the same: 2 → 4 shapes matters as much as 10 → 20.
        value = math.log(n) / math.log(params.full_at) if n > 1 else 0.0
        why = f"below {params.full_at}, where detail earns full marks"
    elif n > params.max_elements:
        value, why = params.max_elements / n, f"above {params.max_elements}: noise rather than drawing"
    else:
        value, why = 1.0, f"within [{params.full_at}, {params.max_elements}]"
    note = " (walk stopped at the shape or element-visit cap)" if geometry.truncated else ""
    return Measurement(value, f"{n} drawn elements, {why}{note}", {"elements": n})


@check(
    "closed_paths",
    "share of drawn shapes that are closed outlines (circle/ellipse/rect/polygon; paths whose subpaths all close)",
)
def closed_paths(drawing: Drawing, _: NoParams) -> Measurement:
    shapes = drawing.geometry.shapes
    if not shapes:
        return Measurement(0.0, "no drawn shapes", {"closed": 0, "shapes": 0})
    closed = sum(s.closed for s in shapes)
    return Measurement(
        closed / len(shapes),
        f"{closed} of {len(shapes)} shapes are closed (lines and polylines are open; a path counts "
        "when every subpath ends in Z or returns to its start)",
        {"closed": closed, "shapes": len(shapes)},
    )


@check("within_canvas", "share of the visible content that lies inside the viewBox rather than off-canvas")
def within_canvas(drawing: Drawing, _: NoParams) -> Measurement:
    surround, background = drawing.surround, drawing.background
    # Pixels the canvas edge passes through count as inside: they hold anti-aliased edges.
    x0, y0, x1, y1 = surround.pixel_box(drawing.svg.canvas)
    inside = int(_content(drawing.raster.on_white, background).sum())  # the raster is that box
    # Only painted pixels can be content (transparent ones show the white page), and most of
    # the surroundings are transparent: composite just those.
    outside_alpha = surround.rgba[..., 3].copy()
    outside_alpha[y0:y1, x0:x1] = 0
    ys, xs = np.nonzero(outside_alpha)
    total = inside + int(_content(on_white(surround.rgba[ys, xs]), background).sum())
    if total == 0:
        return Measurement(0.0, "nothing visible on or around the canvas", {"inside_px": 0, "outside_px": 0})
    share = inside / total
    return Measurement(
        share,
        f"{share:.0%} of visible content is inside the viewBox ({total - inside} px of {total} lie outside it)",
        {"inside_px": inside, "outside_px": total - inside},
    )


def _content(rgb: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Pixels (as seen on a white page) that stand out both from the page and from the canvas
    background: off-canvas pixels in the background colour are an oversized backdrop, not content."""
    return differs_from(rgb, np.array([255, 255, 255])) & differs_from(rgb, background)


class BicycleParams(MeasureParams):
    min_wheel_radius: float = Field(0.04, gt=0, le=0.5, description="smallest wheel radius, as a share of the canvas's longer side")
    min_roundness: float = Field(0.95, gt=0, le=1, description="1 − relative spread of centre distances; a square scores ~0.90")
    raster_fallback: bool = True
    # 32, not fewer: rich honest drawings (sun, clouds, bells, motion lines) offer 8–15 round
    # shapes, and a lower cap made later, richer agent iterations lose to earlier ones.
    max_wheel_candidates: int = Field(
        32, ge=2, description="wheel-sized circles beyond which a wheel pair is chance (noise), not a bicycle: value × max/found"
    )


@check(
    "bicycle_present",
    "two similar wheel-like circles side by side joined by frame strokes (geometry, not labels)",
    params=BicycleParams,
    subjects=(BICYCLE_WORDS,),
)
def bicycle_present(drawing: Drawing, params: BicycleParams) -> Measurement:
    pair, circles, source = find_wheels(drawing, params)
    if pair is None:
        if circles:
            return Measurement(
                0.15,
                f"{len(circles)} wheel-sized circle(s) but no similar pair side by side",
                {"wheel_candidates": len(circles)},
            )
        return Measurement(0.0, "no wheel-like circles found", {"wheel_candidates": 0})
    (ax, ay, ar), (bx, by, br) = pair
    coverage = _frame_coverage(drawing.geometry.shapes, pair)
    specific = specificity(len(circles), params.max_wheel_candidates)
    return Measurement(
        (0.6 + 0.4 * coverage) * specific,
        f"two wheels r≈{ar:.0f}/{br:.0f} side by side, {bx - ax:.0f} apart, found in {source}; "
        f"frame strokes span {coverage:.0%} of the span between the hubs{_chance_note(len(circles), specific)}",
        {"wheels": [[round(v, 2) for v in w] for w in pair], "frame_coverage": round(coverage, 4), "wheel_candidates": len(circles)},
    )


def specificity(candidates: int, most: int) -> float:
    """1 while a feature has at most ``most`` look-alikes; less as look-alikes multiply.

    Among thousands of random shapes some pair always looks like wheels: a find means little
    when the drawing offers that many candidates.
    """
    return min(1.0, most / candidates) if candidates else 1.0


def _chance_note(candidates: int, specific: float) -> str:
    return f"; ×{specific:.2f}: one of {candidates} look-alike candidates, likely chance" if specific < 1 else ""


Circle = tuple[float, float, float]


def find_wheels(drawing: Drawing, params: BicycleParams) -> tuple[tuple[Circle, Circle] | None, list[Circle], str]:
    """The wheel pair (if any), the wheel-sized circle candidates, and where they were found.

    Searched once per file for bicycle_present and rider_on_bicycle alike (the Hough fallback
    is the costliest step of a file without wheel elements)."""
    return drawing.shared(_find_wheels, params.min_wheel_radius, params.min_roundness, params.raster_fallback)


def _find_wheels(drawing: Drawing, min_wheel_radius: float, min_roundness: float, raster_fallback: bool) -> tuple[tuple[Circle, Circle] | None, list[Circle], str]:
    canvas = drawing.svg.canvas
    min_r = min_wheel_radius * max(canvas.width, canvas.height)
    circles = _distinct([c for c in iter_circles(drawing.geometry.shapes, min_roundness) if c[2] >= min_r])
    pair, source = _wheel_pair(circles), "drawn elements"
    if pair is None and raster_fallback:
        circles = _distinct(circles + _raster_circles(drawing, min_r))
        pair, source = _wheel_pair(circles), "the render (Hough transform)"
    return pair, circles, source


def _distinct(circles: list[Circle]) -> list[Circle]:
    """Largest circle of each concentric cluster (tyre, rim and hub are one wheel)."""
    kept: list[Circle] = []
    for c in sorted(circles, key=lambda c: (-c[2], c[0], c[1])):
        if all(np.hypot(c[0] - k[0], c[1] - k[1]) > 0.35 * k[2] for k in kept):
            kept.append(c)
    return kept


def _wheel_pair(circles: list[Circle]) -> tuple[Circle, Circle] | None:
    """The largest pair of similar circles on one level, a bicycle's wheelbase apart."""
    best, best_key = None, None
    for i, a in enumerate(circles):
        for b in circles[i + 1 :]:
            r = (a[2] + b[2]) / 2
            similar = min(a[2], b[2]) / max(a[2], b[2]) >= 0.7
            level = abs(a[1] - b[1]) <= 0.6 * r
            apart = 1.8 * r <= abs(a[0] - b[0]) <= 6.0 * r
            if similar and level and apart and (best_key is None or r > best_key):
                best, best_key = (a, b) if a[0] < b[0] else (b, a), r
    return best


def _raster_circles(drawing: Drawing, min_r: float) -> list[Circle]:
    from skimage.color import rgb2gray
    from skimage.feature import canny

    raster = drawing.raster
    min_px = max(4, int(min_r * raster.scale))
    max_px = max(min_px + 1, int(0.35 * min(raster.width, raster.height)))
    edges = canny(rgb2gray(raster.on_white), sigma=1.5)
    circles = []
    for x, y, r in hough_circles(edges, np.arange(min_px, max_px, 2), min_px):
        cx, cy = raster.to_canvas(float(x), float(y))
        circles.append((cx, cy, float(r) / raster.scale))
    return circles


def hough_circles(edges: np.ndarray, radii: np.ndarray, min_distance: int, threshold: float = 0.55) -> list[tuple[int, int, int]]:
    """The (x, y, r) of the 8 strongest circles in an edge map, at least ``min_distance`` px
    apart, that have more than ``threshold`` of their outline on edges (scikit-image's Hough).

    The peak search runs only on the radii with a vote above the threshold: a layer without
    one has no peak, so the answer is exactly the full search's, for a fraction of its cost
    (searching every layer cost more than the transform: ~30 ms a file without wheel elements).
    """
    from skimage.transform import hough_circle, hough_circle_peaks

    if not edges.any():
        return []
    accumulators = hough_circle(edges, radii)
    voted = accumulators.reshape(len(radii), -1).max(axis=1) > threshold
    if not voted.any():
        return []
    _, xs, ys, rs = hough_circle_peaks(
        accumulators[voted], radii[voted], min_xdistance=min_distance, min_ydistance=min_distance, threshold=threshold, total_num_peaks=8
    )
    return [(int(x), int(y), int(r)) for x, y, r in zip(xs, ys, rs, strict=True)]


def _frame_coverage(shapes: tuple[Shape, ...], pair: tuple[Circle, Circle], bins: int = 16) -> float:
    """Share of the hub-to-hub span crossed by bar-like strokes at frame height.

    Bars are open outlines or thin closed ones; shapes lying wholly inside a wheel (spokes,
    rims, hubs) are the wheel itself, not frame.
    """
    (ax, ay, ar), (bx, by, br) = pair
    r = (ar + br) / 2
    top, bottom = min(ay, by) - 2.5 * r, max(ay, by) + 0.5 * r
    covered = np.zeros(bins, dtype=bool)
    for shape in shapes:
        if shape.closed and shape.thickness > 0.35 * r:
            continue
        pts = shape.points
        in_a = np.hypot(pts[:, 0] - ax, pts[:, 1] - ay) <= 1.05 * ar
        in_b = np.hypot(pts[:, 0] - bx, pts[:, 1] - by) <= 1.05 * br
        if in_a.all() or in_b.all():
            continue
        sel = (pts[:, 0] >= ax) & (pts[:, 0] <= bx) & (pts[:, 1] >= top) & (pts[:, 1] <= bottom)
        index = ((pts[sel, 0] - ax) / (bx - ax) * bins).astype(int).clip(0, bins - 1)
        covered[index] = True
    return float(covered.mean())


class RiderParams(BicycleParams):
    full_at: float = Field(1.5, gt=0, description="rider area, in squared wheel radii, that earns full marks")


@check(
    "rider_on_bicycle",
    "solid shapes (a rider's body) sitting above the wheels between the hubs, rather than beside the bicycle",
    params=RiderParams,
    subjects=(BICYCLE_WORDS, RIDING_WORDS),
)
def rider_on_bicycle(drawing: Drawing, params: RiderParams) -> Measurement:
    pair, circles, _ = find_wheels(drawing, params)
    if pair is None:
        return Measurement(0.0, "no bicycle found, so nothing rides one")
    (ax, ay, ar), (bx, by, br) = pair
    r = (ar + br) / 2
    axle = (ay + by) / 2
    above = beside = 0.0
    for shape in solid_shapes(drawing, thicker_than=0.35 * r):  # thinner ones are frame strokes
        cx, cy = shape.points.mean(axis=0)
        if not axle - 4.0 * r <= cy <= axle + r:
            continue  # sky and ground: scenery, neither riding nor standing by
        if ax - 0.3 * r <= cx <= bx + 0.3 * r and cy <= axle - 0.8 * r:
            above += polygon_area(shape.points)
        elif cx < ax - r or cx > bx + r:
            beside += polygon_area(shape.points)
    # The bird's mass must be on the bicycle: a figure standing next to it pulls the value down.
    on_share = above / (above + beside) if above else 0.0
    specific = specificity(len(circles), params.max_wheel_candidates)
    value = min(1.0, above / (r * r) / params.full_at) * on_share * specific
    return Measurement(
        value,
        f"solid shapes above the wheels cover {above / (r * r):.2f} r² (full marks at {params.full_at:g} r², "
        f"r = wheel radius); {on_share:.0%} of the figure mass at riding height is on the bicycle rather than "
        f"beside it{_chance_note(len(circles), specific)}",
        {"rider_area_r2": round(above / (r * r), 4), "beside_area_r2": round(beside / (r * r), 4), "on_share": round(on_share, 4)},
    )


def solid_shapes(drawing: Drawing, thicker_than: float) -> list[Shape]:
    """Closed shapes thicker than ``thicker_than`` that are not a backdrop."""
    return [s for s in drawing.geometry.shapes if _solid(s, drawing.svg.canvas) and s.thickness > thicker_than]


def _solid(shape: Shape, canvas: Canvas) -> bool:
    """A closed outline smaller than half the canvas: a part of the picture, not its backdrop."""
    x0, y0, x1, y1 = shape.bbox
    return shape.closed and (x1 - x0) * (y1 - y0) <= 0.5 * canvas.width * canvas.height


def polygon_area(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


PELICAN_WORDS = ("pelican", "pelicans")
_MOST_HEADS_TRIED = 64


class PelicanParams(MeasureParams):
    head_radius: tuple[float, float] = Field(
        (0.02, 0.12), description="smallest and largest head radius, as shares of the canvas's longer side"
    )
    min_head_roundness: float = Field(0.85, gt=0, le=1, description="roundness (see bicycle_present) a head needs")
    beak_length: float = Field(1.5, gt=0, description="a pelican's beak is at least this many head radii long")
    max_head_candidates: int = Field(32, ge=1, description="round head-sized shapes beyond which a find is chance (see max_wheel_candidates)")


@check(
    "pelican_features",
    "a pelican's build from geometry: a round head with a long, slender, filled beak reaching out of it (0.5), a bigger "
    "body below the head (0.3), an eye inside the head (0.2)",
    params=PelicanParams,
    subjects=(PELICAN_WORDS,),
)
def pelican_features(drawing: Drawing, params: PelicanParams) -> Measurement:
    canvas = drawing.svg.canvas
    side = max(canvas.width, canvas.height)
    low, high = params.head_radius[0] * side, params.head_radius[1] * side
    heads = [
        s.circle_fit for s in solid_shapes(drawing, thicker_than=0.0)
        if s.circle_fit and s.circle_fit[3] >= params.min_head_roundness and low <= s.circle_fit[2] <= high
    ]
    if not heads:
        return Measurement(0.0, "no round head-sized shape", {"heads": 0})
    parts = _Parts.of(drawing)
    # Past a few dozen candidates the find is chance and specificity scales it to near 0:
    # trying the largest heads keeps noise files (thousands of circles) fast.
    tried = sorted(heads, key=lambda h: (-h[2], h[0], h[1]))[:_MOST_HEADS_TRIED]
    found = max((parts.around(head[:3], params.beak_length) for head in tried), key=_pelican_value)
    specific = specificity(len(heads), params.max_head_candidates)
    if not found["beak"]:
        return Measurement(0.0, f"none of {len(heads)} round head-sized shapes has a long beak", {"heads": len(heads)})
    named = ", ".join(name for name in ("beak", "body", "eye") if found[name])
    return Measurement(
        _pelican_value(found) * specific,
        f"a round head with {named} ({len(heads)} head candidate(s)){_chance_note(len(heads), specific)}",
        {"heads": len(heads), **found},
    )


def _pelican_value(found: dict[str, bool]) -> float:
    # Body and eye only count around a head that has the beak: alone they are any animal.
    return found["beak"] * (0.5 + 0.3 * found["body"] + 0.2 * found["eye"])


@dataclass(frozen=True)
class _Parts:
    """Per-shape measures the head search compares against, computed once for all heads."""

    ends: np.ndarray  # (N, 2, 2): both ends of each shape's main axis
    length: np.ndarray  # (N,): extent along the main axis
    thickness: np.ndarray  # (N,): extent across it
    centre: np.ndarray  # (N, 2)
    area: np.ndarray  # (N,): polygon area of solid shapes (see _solid); 0 for strokes and backdrops

    @classmethod
    def of(cls, drawing: Drawing) -> _Parts:
        shapes = drawing.geometry.shapes
        axes = [s.principal_axis for s in shapes]
        return cls(
            ends=np.array([a[0] for a in axes]).reshape(-1, 2, 2),
            length=np.array([a[1] for a in axes]),
            thickness=np.array([a[2] for a in axes]),
            centre=np.array([s.points.mean(axis=0) for s in shapes]).reshape(-1, 2),
            area=np.array([polygon_area(s.points) if _solid(s, drawing.svg.canvas) else 0.0 for s in shapes]),
        )

    def around(self, head: tuple[float, float, float], beak_length: float) -> dict[str, bool]:
        hx, hy, hr = head
        reach = np.hypot(self.ends[..., 0] - hx, self.ends[..., 1] - hy)  # (N, 2)
        # A beak starts at the head, ends well beyond it, is long and slender, and is a filled
        # outline: a bare stroke from a round shape is a crank, a hand or a clock hand.
        beak = (
            (self.area > 0)
            & (reach.min(axis=1) <= 1.5 * hr)
            & (reach.max(axis=1) >= beak_length * hr)
            & (self.length >= beak_length * hr)
            & (self.thickness <= 0.5 * self.length)
        )
        head_area = math.pi * hr * hr
        inside = np.hypot(self.centre[:, 0] - hx, self.centre[:, 1] - hy) < hr
        return {
            "beak": bool(beak.any()),
            "body": bool(((self.area >= 3 * head_area) & (self.centre[:, 1] > hy)).any()),
            "eye": bool((inside & (self.area > 0) & (self.area <= 0.2 * head_area)).any()),
        }

