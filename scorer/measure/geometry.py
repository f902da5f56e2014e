"""Drawn geometry from the tree: every visible shape as an outline in canvas units.

The walk follows what a renderer draws — transforms, nested ``<svg>``, and ``<use>``
references (bounded, so recursive or exponential chains end) — and skips what is never drawn
directly (``<defs>``, ``<symbol>``, clip paths, masks, patterns, markers, ``display:none``).
It reads geometry only: ids, classes, titles and descriptions carry no meaning here.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from lxml import etree
from svgelements import Close, Matrix, Move, Path

from ..load import XLINK_NS, Canvas, parse_length, parse_numbers

SHAPE_TAGS = frozenset({"circle", "ellipse", "rect", "line", "polyline", "polygon", "path"})
TEXT_TAGS = frozenset({"text"})
_CONTAINERS = frozenset({"g", "a", "switch", "svg"})
# Largest number of shapes one drawing may expand to through <use>; stops exponential chains.
MAX_SHAPES = 20_000
# Largest number of elements one walk may reach, <use> expansions included: a chain whose
# leaves draw nothing never reaches MAX_SHAPES, yet can fan out to 10^10 visits.
MAX_VISITS = 200_000
_CIRCLE_SAMPLES = 48
_SEGMENT_SAMPLES = 24
# Sample positions, made once: np.linspace per shape was a tenth of the walk's time.
_CIRCLE_T = np.linspace(0, 2 * math.pi, _CIRCLE_SAMPLES, endpoint=False)
_CIRCLE_COS, _CIRCLE_SIN = np.cos(_CIRCLE_T), np.sin(_CIRCLE_T)
_SEGMENT_T = np.linspace(0, 1, _SEGMENT_SAMPLES, endpoint=False)


@dataclass(frozen=True)
class Shape:
    """One drawn shape: its element kind, outline points in canvas units, and closedness."""

    kind: str
    points: np.ndarray  # (N, 2)
    closed: bool

    @cached_property
    def bbox(self) -> tuple[float, float, float, float]:
        x0, y0 = self.points.min(axis=0)
        x1, y1 = self.points.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)

    @cached_property
    def circle_fit(self) -> tuple[float, float, float, float] | None:
        """``(cx, cy, r, roundness)`` when the outline goes all the way round a centre.

        Roundness is 1 − (spread of the point-to-centre distances / their mean); a circle,
        ellipse element or arc/Bézier path drawn as a ring scores near 1, a square ~0.9.
        """
        if not self.closed or len(self.points) < 8:
            return None
        x0, y0, x1, y1 = self.bbox
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        offsets = self.points - (cx, cy)
        dist = np.hypot(offsets[:, 0], offsets[:, 1])
        mean = float(dist.mean())
        if mean <= 0:
            return None
        angles = np.arctan2(offsets[:, 1], offsets[:, 0])
        sectors = np.bincount(((angles + math.pi) / (2 * math.pi) * 12).astype(int) % 12, minlength=12)
        if np.count_nonzero(sectors) < 11:
            return None
        return cx, cy, mean, 1.0 - float(dist.std() / mean)

    @cached_property
    def thickness(self) -> float:
        """Extent across the shape's main axis (0 for a straight line)."""
        return self.principal_axis[2] if len(self.points) >= 3 else 0.0

    @cached_property
    def principal_axis(self) -> tuple[np.ndarray, float, float]:
        """Both ends of the main axis, the extent along it and the extent across it (one SVD,
        shared by the checks that need the shape's orientation)."""
        mean = self.points.mean(axis=0)
        centred = self.points - mean
        if len(self.points) < 2 or not centred.any():
            return np.array([mean, mean]), 0.0, 0.0
        axes = np.linalg.svd(centred, full_matrices=False)[2]
        along, across = centred @ axes[0], centred @ axes[-1]
        ends = mean + np.outer([along.min(), along.max()], axes[0])
        return ends, float(along.max() - along.min()), float(across.max() - across.min())

@dataclass(frozen=True)
class Geometry:
    shapes: tuple[Shape, ...]
    texts: tuple[str, ...]  # visible text content, one entry per text element
    truncated: bool  # True when MAX_SHAPES or MAX_VISITS stopped the walk
    images: tuple[Shape, ...] = ()  # the placement rectangle of every drawn <image>, in canvas units


def extract_geometry(root: etree._Element, canvas: Canvas) -> Geometry:
    ids = {el.get("id"): el for el in root.iter() if isinstance(el.tag, str) and el.get("id")}
    walker = _Walker(ids, canvas)
    walker.visit_children(root, _matrix(root.get("transform")), frozenset())
    return Geometry(tuple(walker.shapes), tuple(walker.texts), walker.truncated, tuple(walker.images))


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _matrix(transform: str | None) -> np.ndarray:
    if not transform:
        return np.eye(3)
    try:
        m = Matrix(transform)
    except (ValueError, IndexError, TypeError):
        return np.eye(3)
    return np.array([[m.a, m.c, m.e], [m.b, m.d, m.f], [0.0, 0.0, 1.0]])


def _translate(x: float, y: float) -> np.ndarray:
    return np.array([[1.0, 0.0, x], [0.0, 1.0, y], [0.0, 0.0, 1.0]])


def _href(el: etree._Element) -> str:
    return el.get("href") or el.get(f"{{{XLINK_NS}}}href") or ""


def _hidden(el: etree._Element) -> bool:
    style = (el.get("style") or "").replace(" ", "").lower()
    return el.get("display") == "none" or "display:none" in style


class _Walker:
    def __init__(self, ids: dict[str, etree._Element], canvas: Canvas) -> None:
        self.ids = ids
        self.canvas = canvas
        self.shapes: list[Shape] = []
        self.texts: list[str] = []
        self.images: list[Shape] = []
        self.truncated = False
        self.visits = 0

    def visit_children(self, el: etree._Element, ctm: np.ndarray, using: frozenset[str]) -> None:
        for child in el:
            if self.truncated:
                return
            self.visit(child, ctm, using)

    def visit(self, el: etree._Element, ctm: np.ndarray, using: frozenset[str]) -> None:
        self.visits += 1
        if self.visits > MAX_VISITS:
            self.truncated = True
            return
        tag = _local(el)
        if not tag or _hidden(el):
            return
        ctm = ctm @ _matrix(el.get("transform"))
        if tag in _CONTAINERS:
            if tag == "svg":
                ctm = ctm @ _translate(self._len(el, "x", "w"), self._len(el, "y", "h"))
            self.visit_children(el, ctm, using)
        elif tag == "use":
            self._visit_use(el, ctm, using)
        elif tag in SHAPE_TAGS:
            self._add_shape(tag, el, ctm)
        elif tag == "image" and _href(el).strip().lower().startswith("data:"):
            # Kept apart from the shapes: a bitmap is not drawing, and checks weigh it on its own.
            # Only data: URLs are ever fetched (scorer.render), so other hrefs draw nothing.
            outline = _outline("rect", el, self._len)
            if outline is not None and np.isfinite(outline[0]).all():
                self.images.append(_placed("image", outline, ctm))
        elif tag in TEXT_TAGS:
            text = " ".join("".join(el.itertext()).split())
            if text:
                self.texts.append(text)

    def _visit_use(self, el: etree._Element, ctm: np.ndarray, using: frozenset[str]) -> None:
        href = _href(el)
        target_id = href[1:] if href.startswith("#") else None
        target = self.ids.get(target_id) if target_id else None
        if target is None or target_id in using:  # external or recursive reference: not drawn
            return
        ctm = ctm @ _translate(self._len(el, "x", "w"), self._len(el, "y", "h"))
        using = using | {target_id}
        if _local(target) == "symbol":
            self.visit_children(target, ctm, using)
        else:
            self.visit(target, ctm, using)

    def _len(self, el: etree._Element, name: str, axis: str) -> float:
        ref = self.canvas.width if axis == "w" else self.canvas.height
        return parse_length(el.get(name), ref) or 0.0

    def _add_shape(self, tag: str, el: etree._Element, ctm: np.ndarray) -> None:
        if len(self.shapes) >= MAX_SHAPES:
            self.truncated = True
            return
        outline = _outline(tag, el, self._len)
        if outline is None:
            return
        if np.isfinite(outline[0]).all() and len(outline[0]):
            self.shapes.append(_placed(tag, outline, ctm))


def _placed(tag: str, outline: tuple[np.ndarray, bool], ctm: np.ndarray) -> Shape:
    """The outline moved from its element's user space into canvas units."""
    points, closed = outline
    homogeneous = np.empty((len(points), 3))
    homogeneous[:, :2], homogeneous[:, 2] = points, 1.0
    return Shape(tag, (homogeneous @ ctm.T)[:, :2], closed)


def _outline(tag, el, length) -> tuple[np.ndarray, bool] | None:
    """Outline points of one element in its own user space, and whether it is closed."""
    if tag in ("circle", "ellipse"):
        cx, cy = length(el, "cx", "w"), length(el, "cy", "h")
        if tag == "circle":
            rx = ry = length(el, "r", "w")
        else:
            rx, ry = length(el, "rx", "w"), length(el, "ry", "h")
        if rx <= 0 or ry <= 0:
            return None
        return np.column_stack([cx + rx * _CIRCLE_COS, cy + ry * _CIRCLE_SIN]), True
    if tag == "rect":
        x, y, w, h = (length(el, k, a) for k, a in (("x", "w"), ("y", "h"), ("width", "w"), ("height", "h")))
        if w <= 0 or h <= 0:
            return None
        return _densify(np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]])), True
    if tag == "line":
        ends = np.array([[length(el, "x1", "w"), length(el, "y1", "h")], [length(el, "x2", "w"), length(el, "y2", "h")]])
        return _densify(ends), False
    if tag in ("polyline", "polygon"):
        numbers = parse_numbers(el.get("points"))
        if len(numbers) < 4:
            return None
        pts = np.array(numbers[: len(numbers) // 2 * 2]).reshape(-1, 2)
        if tag == "polygon":
            pts = np.vstack([pts, pts[:1]])
        return _densify(pts), tag == "polygon" or bool(np.allclose(pts[0], pts[-1]))
    return _path_outline(el.get("d"))


def _path_outline(d: str | None) -> tuple[np.ndarray, bool] | None:
    if not d or not d.strip():
        return None
    try:
        path = Path(d)
    except Exception:  # noqa: BLE001  (svgelements raises many types on malformed data)
        return None
    # Sampled segment by segment: Path.npoint over a whole path is ~40× slower.
    t = _SEGMENT_T
    chunks: list[np.ndarray] = []
    subpaths: list[tuple[np.ndarray, np.ndarray, bool]] = []  # (start, end, ends with Z)
    for segment in path:
        if isinstance(segment, Move):
            continue
        if segment.start is None or segment.end is None:
            continue
        try:
            pts = np.asarray(segment.npoint(t), dtype=float).reshape(-1, 2)
        except Exception:  # noqa: BLE001
            continue
        start, end = np.array(segment.start, dtype=float), np.array(segment.end, dtype=float)
        chunks.append(np.vstack([pts, end]))
        if subpaths and np.array_equal(subpaths[-1][1], start) and not subpaths[-1][2]:
            subpaths[-1] = (subpaths[-1][0], end, isinstance(segment, Close))
        else:
            subpaths.append((start, end, isinstance(segment, Close)))
    if not chunks:
        return None
    points = np.vstack(chunks)
    tolerance = 1e-6 * (1 + float(np.abs(points).max()))
    closed = all(z or np.allclose(a, b, atol=tolerance) for a, b, z in subpaths)
    return points, closed


def _densify(vertices: np.ndarray) -> np.ndarray:
    """Sample points along a polyline so lines carry points between their vertices."""
    t = _SEGMENT_T[:, None]
    parts = [a + t * (b - a) for a, b in zip(vertices[:-1], vertices[1:], strict=True)]
    return np.vstack([*parts, vertices[-1:]])


def iter_circles(shapes: tuple[Shape, ...], min_roundness: float) -> Iterator[tuple[float, float, float]]:
    for shape in shapes:
        fit = shape.circle_fit
        if fit is not None and fit[3] >= min_roundness:
            yield fit[0], fit[1], fit[2]
