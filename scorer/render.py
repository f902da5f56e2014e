"""Stage 2 — render: the one rendering entry point, tree → RGBA raster with cairosvg or resvg.

The output size is always set here (the longer side is ``size`` pixels), whatever the file
declares, so ``width="1e9"`` cannot allocate a giant surface. Only ``data:`` URLs are ever
fetched; every other reference (http, file, other documents) renders as nothing. Time and
memory bounds are enforced one level up, by the worker process that calls this
(:mod:`scorer.isolation`).
"""

from __future__ import annotations

import copy
import hashlib
import io
import math
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property, lru_cache, wraps
from typing import TypeVar

import numpy as np
from lxml import etree
from PIL import Image

from .config import Backend
from .errors import RenderError
from .load import SVG_NS, Canvas, LoadedSvg

T = TypeVar("T")


@dataclass(frozen=True)
class Raster:
    """An RGBA render of ``window`` (canvas units) at ``scale`` pixels per unit."""

    rgba: np.ndarray  # (H, W, 4) uint8, straight alpha
    window: Canvas

    @property
    def width(self) -> int:
        return int(self.rgba.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgba.shape[0])

    @property
    def scale(self) -> float:
        return self.width / self.window.width

    @cached_property
    def on_white(self) -> np.ndarray:
        """The picture a viewer sees on a white page: (H, W, 3) uint8."""
        return on_white(self.rgba)

    def sha256(self) -> str:
        digest = hashlib.sha256(f"{self.width}x{self.height}:".encode())
        digest.update(np.ascontiguousarray(self.rgba).tobytes())
        return digest.hexdigest()

    def to_canvas(self, px: float, py: float) -> tuple[float, float]:
        return self.window.x + px / self.scale, self.window.y + py / self.scale

    def pixel_box(self, area: Canvas) -> tuple[int, int, int, int]:
        """Pixel bounds ``(x0, y0, x1, y1)`` of ``area``, widened to whole pixels."""
        sx, sy = self.width / self.window.width, self.height / self.window.height
        return (
            math.floor(round((area.x - self.window.x) * sx, 6)),
            math.floor(round((area.y - self.window.y) * sy, 6)),
            math.ceil(round((area.x + area.width - self.window.x) * sx, 6)),
            math.ceil(round((area.y + area.height - self.window.y) * sy, 6)),
        )

    def crop_to(self, area: Canvas) -> Raster:
        x0, y0, x1, y1 = self.pixel_box(area)
        return Raster(rgba=self.rgba[y0:y1, x0:x1], window=area)


def renderer_provenance(backend: Backend) -> dict[str, str | None]:
    """The renderer, its version and the native library under it: a new cairo can move scores."""
    from importlib.metadata import PackageNotFoundError, version

    if backend == "resvg":
        try:
            return {"backend": "resvg", "version": version("resvg-py"), "native": "resvg (bundled in resvg-py)"}
        except PackageNotFoundError:
            return {"backend": "resvg", "version": None, "native": None}
    import cairocffi

    return {"backend": "cairosvg", "version": version("cairosvg"), "native": f"cairo {cairocffi.cairo_version_string()}"}


def _box(c: Canvas) -> str:
    return f"{c.x!r} {c.y!r} {c.width!r} {c.height!r}"


def output_size(window: Canvas, size: int) -> tuple[int, int]:
    """Pixel size fitting ``window`` into a ``size``×``size`` box, keeping its aspect ratio."""
    scale = size / max(window.width, window.height)
    return max(1, round(window.width * scale)), max(1, round(window.height * scale))


def render(svg: LoadedSvg, size: int, *, margin: int = 0, backend: Backend = "cairosvg") -> Raster:
    """Rasterize ``svg``'s canvas with its longer side ``size`` px, plus ``margin`` canvas-sizes
    of its surroundings on every side at the same scale (see :meth:`Raster.crop_to`)."""
    canvas = svg.canvas
    if not all(map(math.isfinite, (canvas.x, canvas.y, canvas.width, canvas.height))):
        # e.g. viewBox="0 0 1e400 1e400": parses as inf, and no pixel size can be derived from it.
        raise RenderError(f"the canvas is not finite (viewBox or size {_box(canvas)})")
    canvas_width, canvas_height = output_size(canvas, size)
    span = 1 + 2 * margin
    width, height = canvas_width * span, canvas_height * span
    window = canvas.expanded(margin)
    root = copy.deepcopy(svg.root)
    # Pixel sizes are rounded, so stretch the last fraction of a pixel rather than letterbox:
    # that keeps the pixel ↔ canvas mapping exact for the raster checks.
    root.set("preserveAspectRatio", "none")
    root.set("viewBox", _box(canvas))
    if margin == 0:
        root.set("width", str(width))
        root.set("height", str(height))
    else:
        # Show the canvas inside a larger window without changing what percentages resolve
        # against: the drawing keeps its own viewport, placed in an outer one, unclipped.
        for name, value in zip(("x", "y", "width", "height"), _box(canvas).split(), strict=True):
            root.set(name, value)
        root.set("overflow", "visible")
        outer = etree.Element(
            f"{{{SVG_NS}}}svg",
            nsmap={None: SVG_NS},
            viewBox=_box(window),
            width=str(width),
            height=str(height),
            preserveAspectRatio="none",
        )
        outer.append(root)
        root = outer
    document = etree.tostring(root)
    try:
        rgba = _BACKENDS[backend](document)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001  (renderers raise anything from ValueError to cairo.Error)
        raise RenderError(f"{backend} failed: {type(exc).__name__}: {exc}"[:500]) from None
    if rgba.shape[:2] != (height, width):
        # Both backends honour our width/height; anything else means the document fought it.
        rgba = np.asarray(Image.fromarray(rgba).resize((width, height), Image.Resampling.BILINEAR))
    return Raster(rgba=rgba, window=window)


def _png_to_rgba(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGBA"))


def on_white(rgba: np.ndarray) -> np.ndarray:
    """Straight-alpha RGBA pixels (any leading shape) composited onto white: uint8 RGB."""
    alpha = rgba[..., 3:4].astype(np.uint16)
    # Integer "over" onto white, rounded to nearest: (c·a + 255·(255 − a) + 127) // 255, computed
    # with the exact shift form of division by 255 (valid up to 255², which this never exceeds).
    t = rgba[..., :3].astype(np.uint16) * alpha + 255 * (255 - alpha) + 128
    return ((t + (t >> 8)) >> 8).astype(np.uint8)


def unpremultiply_bgra(bgra: np.ndarray) -> np.ndarray:
    """Cairo's premultiplied native-endian ARGB32 (BGRA bytes here) → straight RGBA.

    Rounds as cairo's own PNG writer does, ``(c·255 + a/2) / a``, so results match a PNG
    round trip bit for bit without paying for the encode and decode. Only partly transparent
    pixels need the division: premultiplied colour is already 0 where alpha is 0, and exact
    where it is 255 — and most of a render is one or the other.
    """
    rgba = bgra[..., (2, 1, 0, 3)]
    ys, xs = np.nonzero(bgra[..., 3] - np.uint8(1) < 254)  # uint8 wraps: 0 < alpha < 255
    if len(ys):
        pixels = rgba[ys, xs].astype(np.uint32)
        alpha = pixels[:, 3:4]
        rgba[ys, xs, :3] = (pixels[:, :3] * 255 + alpha // 2) // alpha
    return rgba


def _draw_known_markers(surface, node) -> None:
    """cairosvg's ``draw_markers``, minus the crash on a marker ``url()`` naming no ``<marker>``.

    cairosvg 2.9 raises AttributeError for such a reference (an external one, or a dangling
    ``url(#missing)`` that generated SVG often has), losing the whole drawing; browsers and resvg
    draw the path without the marker, so we do too. Properties come from attributes and CSS alike
    by the time cairosvg draws, so this is the one place that sees them all.
    """
    from cairosvg.path import draw_markers
    from cairosvg.url import parse_url

    for name in ("marker", "marker-start", "marker-mid", "marker-end"):
        if name in node and parse_url(node[name]).fragment not in surface.markers:
            node[name] = ""
    draw_markers(surface, node)


class _Always(dict):
    """cairosvg's ``text-rendering`` → font option table, giving one answer for every value.

    Text is drawn unhinted (outlines and advances as designed, not fitted to the pixel grid),
    whatever the document asks: hinted glyphs depend on cairo's process-wide font caches, so the
    same file rendered after another with text in the same face at another size came out
    different (25 of 346 files — the arena drawings and 200 of resvg's text tests — changed with
    the order they were rendered in; unhinted, none). A renderer may ignore ``text-rendering``:
    it is a hint.
    """

    def __init__(self, value: int) -> None:
        super().__init__()
        self.value = value

    def get(self, key: object, default: object = None) -> int:  # type: ignore[override]
        return self.value


# Longest string whose parse is remembered: lengths, colours and url() references, not path data.
_MEMO_MAX_CHARS = 200


def _memoised_str_parser(parse: Callable[..., T]) -> Callable[..., T]:
    """``parse``, remembering its answer for short strings when called with one argument.

    cairosvg re-parses the same few strings for every element it draws — ``parse_url`` of each
    node's mask, filter, clip-path and markers (usually absent), ``normalize`` of lengths such as
    ``2px`` — about a tenth of its drawing time. Both are pure functions of one string (``parse_url``
    reads the file system only with a ``base``, which is never remembered), and their answers
    (``str``, ``ParseResult``) are immutable, so sharing them changes no pixel. Bounded: at most
    4,096 strings of at most ``_MEMO_MAX_CHARS`` per process.
    """
    remembered = lru_cache(maxsize=4096)(parse)

    @wraps(parse)
    def memoised(string: object = None, *rest: object) -> T:
        if not rest and (string is None or (isinstance(string, str) and len(string) <= _MEMO_MAX_CHARS)):
            return remembered(string)
        return parse(string, *rest)

    return memoised


@cache
def _amend_cairosvg() -> None:
    """Our changes to how cairosvg draws (markers naming no marker, unhinted text) and to its
    speed (memoised string parsers), made once per process on the first render."""
    import cairocffi
    import cairosvg.helpers
    import cairosvg.surface
    import cairosvg.url

    cairosvg.surface.draw_markers = _draw_known_markers
    cairosvg.surface.TEXT_HINT_STYLE = _Always(cairocffi.HINT_STYLE_NONE)
    cairosvg.surface.TEXT_HINT_METRICS = _Always(cairocffi.HINT_METRICS_OFF)
    # Each cairosvg module imported these functions by name: replace every module's reference.
    for original in (cairosvg.helpers.normalize, cairosvg.url.parse_url):
        memoised = _memoised_str_parser(original)
        for name, module in list(sys.modules.items()):
            if (name == "cairosvg" or name.startswith("cairosvg.")) and getattr(module, original.__name__, None) is original:
                setattr(module, original.__name__, memoised)


def _rasterize_cairosvg(document: bytes) -> np.ndarray:
    import cairosvg.parser
    import cairosvg.surface
    from cairosvg.url import safe_fetch

    _amend_cairosvg()

    # data: URLs only; every other reference becomes an empty image.
    tree = cairosvg.parser.Tree(bytestring=document, url_fetcher=safe_fetch, unsafe=False)
    surface = cairosvg.surface.PNGSurface(tree, None, 96)  # draws; output None: no PNG written
    image = surface.cairo
    image.flush()
    stride, height, width = image.get_stride(), image.get_height(), image.get_width()
    pixels = np.frombuffer(image.get_data(), dtype=np.uint8).reshape(height, stride // 4, 4)[:, :width]
    if sys.byteorder != "little":
        pixels = pixels[..., ::-1]  # ARGB32 is native-endian: big-endian hosts store A,R,G,B
    return unpremultiply_bgra(pixels)


def _local_only(document: bytes) -> str:
    """``document`` with every reference that is neither ``#fragment`` nor ``data:`` removed.

    resvg reads any ``href`` that is not a ``data:`` URL as a file path — absolute paths
    included, whatever ``resources_dir`` says — so such references are dropped before it sees
    them: they render as nothing, as with cairosvg.
    """
    parser = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True, huge_tree=True)
    root = etree.fromstring(document, parser)
    for element in root.iter():
        for name in [n for n in element.attrib if etree.QName(n).localname == "href"]:
            value = element.attrib[name].strip()
            if not (value.startswith("#") or value[:5].lower() == "data:"):
                del element.attrib[name]
    return etree.tostring(root, encoding="unicode")


def _rasterize_resvg(document: bytes) -> np.ndarray:
    import resvg_py

    svg = _local_only(document)
    # Second wall: relative paths would resolve inside an empty directory.
    with tempfile.TemporaryDirectory(prefix="svgscore-resvg-") as empty:
        try:
            # resvg-py's own defaults differ from resvg's: dpi 0 would turn mm/cm/in/pt lengths
            # into 0, and no languages would make every systemLanguage test false.
            png = resvg_py.svg_to_bytes(svg_string=svg, resources_dir=empty, dpi=96.0, languages=["en"])
        except BaseException as exc:
            # A Rust panic surfaces as pyo3's PanicException, a BaseException: make it an
            # ordinary error so it becomes a render_error row like any other renderer failure.
            if isinstance(exc, Exception) or type(exc).__name__ != "PanicException":
                raise
            raise RuntimeError(f"resvg panicked: {exc}") from None
    return _png_to_rgba(bytes(png))


_BACKENDS: dict[str, Callable[[bytes], np.ndarray]] = {
    "cairosvg": _rasterize_cairosvg,
    "resvg": _rasterize_resvg,
}
