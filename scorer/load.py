"""Stage 1 — load & validate: bytes → hardened lxml tree.

Every file is treated as hostile. The parser never resolves entities, never loads a DTD,
never touches the network, and drops comments and processing instructions (nothing
downstream may read meaning from them). Size caps turn resource attacks into error rows.
"""

from __future__ import annotations

import io
import re
import zlib
from dataclasses import dataclass

from lxml import etree

from .config import Limits
from .errors import AttributeTooLargeError, ParseError, TooDeepError, TooLargeError, TooManyElementsError, UnsafeSvgError

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"

# Browsers' default size for an <svg> that states neither viewBox nor width/height.
_DEFAULT_CANVAS = (0.0, 0.0, 300.0, 150.0)
_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
# CSS absolute units in px at 96 dpi, as cairosvg and browsers use them.
_UNITS = {"": 1.0, "px": 1.0, "pt": 4 / 3, "pc": 16.0, "in": 96.0, "cm": 96 / 2.54, "mm": 96 / 25.4}


@dataclass(frozen=True)
class Canvas:
    """The drawing's coordinate window (its viewBox), in user units."""

    x: float
    y: float
    width: float
    height: float

    def expanded(self, margin: float) -> Canvas:
        """The canvas grown by ``margin`` canvas-sizes on every side."""
        return Canvas(
            self.x - margin * self.width,
            self.y - margin * self.height,
            self.width * (1 + 2 * margin),
            self.height * (1 + 2 * margin),
        )


@dataclass(frozen=True)
class LoadedSvg:
    """A parsed, validated SVG document."""

    root: etree._Element
    canvas: Canvas
    strict: bool  # False when the file only parsed after a browser-tolerated repair
    repair: str | None  # what was repaired, for the explanation


def decompress(data: bytes, limits: Limits) -> bytes:
    """Inflate ``.svgz`` (gzip) data, stopping at the decompressed-size cap (gzip bombs)."""
    if not data.startswith(b"\x1f\x8b"):
        return data
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limits.max_bytes + 1)
    except zlib.error as exc:
        raise ParseError(f"corrupt gzip data: {exc}") from None
    if len(out) > limits.max_bytes:
        raise TooLargeError(f"decompressed size exceeds the {limits.max_bytes:,}-byte cap")
    return out


def load_svg(data: bytes, limits: Limits) -> LoadedSvg:
    """Validate and parse SVG bytes (plain or gzip) into a :class:`LoadedSvg`."""
    if len(data) > limits.max_bytes:
        raise TooLargeError(f"file is {len(data):,} bytes; the cap is {limits.max_bytes:,}")
    data = decompress(data, limits)
    if not data.strip():
        raise ParseError("file is empty")
    if b"\x00" in data[:4096]:
        raise ParseError("binary data (NUL bytes), not an SVG text file")
    root, repair = _parse(data)
    _reject_entities(root)
    tag = etree.QName(root).localname if isinstance(root.tag, str) else ""
    if tag != "svg":
        raise ParseError(f"root element is <{tag or '?'}>, not <svg>")
    if etree.QName(root).namespace != SVG_NS:
        repair = repair or "the root <svg> lacks xmlns=\"http://www.w3.org/2000/svg\""
        root = _with_svg_namespace(root)
    _enforce_limits(root, limits)
    return LoadedSvg(root=root, canvas=canvas_of(root), strict=repair is None, repair=repair)


class _NothingOutside(etree.Resolver):
    """Answers every external load (DTD subset, parameter entity, XInclude) with nothing.

    ``load_dtd=False`` alone is not enough: with ``collect_ids=False`` libxml2 still loads the
    external subset and external parameter entities, so no file or URL is ever opened at all.
    """

    def resolve(self, system_url, public_id, context):  # noqa: ARG002 - lxml's signature
        return self.resolve_string("", context)


# libxml2 refuses these itself, while parsing, before our own entity check sees the tree.
_ENTITY_ATTACKS = ("entity amplification", "entity reference loop", "network entity")


def _parser() -> etree.XMLParser:
    parser = etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,  # duplicate ids are common in generated SVG and harmless to us
    )
    parser.resolvers.add(_NothingOutside())
    return parser


def _parse(data: bytes) -> tuple[etree._Element, str | None]:
    try:
        return etree.fromstring(data, _parser()), None
    except etree.XMLSyntaxError as exc:
        if "Excessive depth" in str(exc):
            raise TooDeepError(f"elements nested deeper than the XML parser allows: {exc}") from None
        if any(sign in str(exc) for sign in _ENTITY_ATTACKS):
            raise UnsafeSvgError(f"XML entity attack refused by the parser: {exc}") from None
        # LLMs often write xlink:href without declaring xlink; browsers showing SVG inline
        # in HTML accept that, so we repair exactly that slip and note it.
        if "Namespace prefix xlink" not in str(exc):
            raise ParseError(f"not well-formed XML: {exc}") from None
    repaired = re.sub(rb"<svg\b", b'<svg xmlns:xlink="' + XLINK_NS.encode() + b'"', data, count=1)
    try:
        return etree.fromstring(repaired, _parser()), "declared the missing xlink namespace"
    except etree.XMLSyntaxError as exc:
        raise ParseError(f"not well-formed XML: {exc}") from None


def _reject_entities(root: etree._Element) -> None:
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is not None and any(True for _ in dtd.iterentities()):
        raise UnsafeSvgError("document declares XML entities (entity expansion attacks are refused)")


def _with_svg_namespace(root: etree._Element) -> etree._Element:
    """Re-home un-namespaced elements into the SVG namespace so every stage sees one vocabulary."""
    for el in root.iter():
        if isinstance(el.tag, str) and etree.QName(el).namespace is None:
            el.tag = f"{{{SVG_NS}}}{el.tag}"
    etree.cleanup_namespaces(root)
    return root


def _enforce_limits(root: etree._Element, limits: Limits) -> None:
    count = 0
    stack = [(root, 1)]
    while stack:
        el, depth = stack.pop()
        count += 1
        if count > limits.max_elements:
            raise TooManyElementsError(f"more than {limits.max_elements:,} elements")
        if depth > limits.max_depth:
            raise TooDeepError(f"elements nested deeper than {limits.max_depth}")
        for name, value in el.attrib.items():
            if len(value) > limits.max_attribute_bytes:
                raise AttributeTooLargeError(
                    f"attribute {etree.QName(name).localname!r} is {len(value):,} characters; "
                    f"the cap is {limits.max_attribute_bytes:,}"
                )
        stack.extend((child, depth + 1) for child in el)


def parse_length(value: str | None, reference: float) -> float | None:
    """A CSS length in user units (px); percentages are of ``reference``."""
    if value is None:
        return None
    value = value.strip()
    match = _NUMBER.match(value)
    if not match:
        return None
    number, unit = float(match.group()), value[match.end():].strip().lower()
    if unit == "%":
        return number * reference / 100
    if unit in ("em", "rem"):
        return number * 16
    if unit == "ex":
        return number * 8
    return number * _UNITS[unit] if unit in _UNITS else None


def parse_numbers(value: str | None) -> list[float]:
    return [float(n) for n in _NUMBER.findall(value or "")]


def canvas_of(root: etree._Element) -> Canvas:
    """The root's viewBox, else its width/height, else the browser default 300×150."""
    box = parse_numbers(root.get("viewBox"))
    if len(box) == 4 and box[2] > 0 and box[3] > 0:
        return Canvas(*box)
    width = parse_length(root.get("width"), _DEFAULT_CANVAS[2])
    height = parse_length(root.get("height"), _DEFAULT_CANVAS[3])
    if width and height and width > 0 and height > 0:
        return Canvas(0.0, 0.0, width, height)
    return Canvas(*_DEFAULT_CANVAS)


def read_svg_bytes(stream: io.BufferedIOBase, limits: Limits) -> bytes:
    """Read at most the byte cap (+1 to detect overflow) from a stream."""
    return stream.read(limits.max_bytes + 1)
