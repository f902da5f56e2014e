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
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from lxml import etree
from PIL import Image

from .config import Backend
from .errors import RenderError
from .load import SVG_NS, Canvas, LoadedSvg


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
        alpha = self.rgba[..., 3:4].astype(np.float32) / 255.0
        rgb = self.rgba[..., :3].astype(np.float32)
        return np.rint(rgb * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)

    def sha256(self) -> str:
        digest = hashlib.sha256(f"{self.width}x{self.height}:".encode())
        digest.update(np.ascontiguousarray(self.rgba).tobytes())
        return digest.hexdigest()

    def to_canvas(self, px: float, py: float) -> tuple[float, float]:
        return self.window.x + px / self.scale, self.window.y + py / self.scale


def _box(c: Canvas) -> str:
    return f"{c.x!r} {c.y!r} {c.width!r} {c.height!r}"


def output_size(window: Canvas, size: int) -> tuple[int, int]:
    """Pixel size fitting ``window`` into a ``size``×``size`` box, keeping its aspect ratio."""
    scale = size / max(window.width, window.height)
    return max(1, round(window.width * scale)), max(1, round(window.height * scale))


def render(svg: LoadedSvg, size: int, window: Canvas | None = None, backend: Backend = "cairosvg") -> Raster:
    """Rasterize ``svg`` showing ``window`` (default: its canvas) with the longer side ``size`` px."""
    canvas = svg.canvas
    window = window or canvas
    width, height = output_size(window, size)
    root = copy.deepcopy(svg.root)
    # Pixel sizes are rounded, so stretch the last fraction of a pixel rather than letterbox:
    # that keeps the pixel ↔ canvas mapping exact for the raster checks.
    root.set("preserveAspectRatio", "none")
    root.set("viewBox", _box(canvas))
    if window == canvas:
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


def _rasterize_cairosvg(document: bytes) -> np.ndarray:
    import cairosvg.surface
    from cairosvg.url import safe_fetch

    png = cairosvg.surface.PNGSurface.convert(
        bytestring=document,
        url_fetcher=safe_fetch,  # data: URLs only; everything else becomes an empty image
        unsafe=False,
    )
    return _png_to_rgba(png)


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
            png = resvg_py.svg_to_bytes(svg_string=svg, resources_dir=empty)
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
