"""Stage 1: hostile-input basics of the loader (deep hardening is issue 4's)."""

import gzip

import pytest

from scorer.config import Limits
from scorer.errors import ParseError, TooLargeError, UnsafeSvgError
from scorer.load import Canvas, canvas_of, load_svg, parse_length

from .conftest import svg

LIMITS = Limits()


def test_well_formed_svg_parses_strictly():
    loaded = load_svg(svg('<circle cx="5" cy="5" r="4"/>').encode(), LIMITS)
    assert loaded.strict and loaded.repair is None
    assert loaded.canvas == Canvas(0, 0, 400, 300)


def test_entity_declarations_are_refused_not_expanded():
    laughs = b"""<?xml version="1.0"?>
<!DOCTYPE svg [<!ENTITY a "hahahahahaha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>
<svg xmlns="http://www.w3.org/2000/svg"><text>&b;</text></svg>"""
    with pytest.raises(UnsafeSvgError, match="entities"):
        load_svg(laughs, LIMITS)


def test_external_entity_is_refused():
    xxe = b"""<!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>"""
    with pytest.raises(UnsafeSvgError):
        load_svg(xxe, LIMITS)


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"   \n", "empty"),
        (b"Sorry, I cannot draw that.", "not well-formed"),
        (b'<html xmlns="http://www.w3.org/1999/xhtml"><body/></html>', "root element is <html>"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="4"', "not well-formed"),
    ],
)
def test_broken_input_is_a_parse_error(data, message):
    with pytest.raises(ParseError, match=message):
        load_svg(data, LIMITS)


def test_undeclared_xlink_prefix_is_repaired_and_noted():
    data = b'<svg xmlns="http://www.w3.org/2000/svg"><defs><circle id="c" r="4"/></defs><use xlink:href="#c"/></svg>'
    loaded = load_svg(data, LIMITS)
    assert not loaded.strict
    assert "xlink" in loaded.repair


def test_svg_without_namespace_is_repaired_into_the_svg_namespace():
    loaded = load_svg(b'<svg viewBox="0 0 10 10"><rect width="5" height="5"/></svg>', LIMITS)
    assert not loaded.strict
    assert all(el.tag.startswith("{http://www.w3.org/2000/svg}") for el in loaded.root.iter())


def test_svgz_is_decompressed():
    loaded = load_svg(gzip.compress(svg('<rect width="5" height="5"/>').encode()), LIMITS)
    assert loaded.strict


def test_gzip_bomb_stops_at_the_cap():
    bomb = gzip.compress(b"<svg>" + b" " * 50_000_000 + b"</svg>")
    assert len(bomb) < 100_000
    with pytest.raises(TooLargeError, match="decompressed"):
        load_svg(bomb, LIMITS)


@pytest.mark.parametrize(
    "limits, data, message",
    [
        (Limits(max_bytes=100), svg("<g/>" * 50).encode(), "bytes"),
        (Limits(max_elements=10), svg("<g/>" * 20).encode(), "elements"),
        (Limits(max_depth=5), svg("<g>" * 10 + "</g>" * 10).encode(), "deeper"),
        (Limits(max_attribute_bytes=50), svg(f'<path d="M0 0{" L1 1" * 20}"/>').encode(), "attribute"),
    ],
)
def test_caps_give_too_large(limits, data, message):
    with pytest.raises(TooLargeError, match=message):
        load_svg(data, limits)


def test_canvas_falls_back_from_viewbox_to_size_to_browser_default():
    from lxml import etree

    assert canvas_of(etree.fromstring(b'<svg viewBox="10 20 30 40"/>')) == Canvas(10, 20, 30, 40)
    assert canvas_of(etree.fromstring(b'<svg width="2in" height="96px"/>')) == Canvas(0, 0, 192, 96)
    assert canvas_of(etree.fromstring(b'<svg viewBox="0 0 0 10"/>')) == Canvas(0, 0, 300, 150)


def test_parse_length_units_and_percentages():
    assert parse_length("50%", 400) == 200
    assert parse_length("1in", 0) == 96
    assert parse_length("12", 0) == 12
    assert parse_length("auto", 0) is None
