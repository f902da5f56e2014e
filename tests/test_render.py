"""The rendering entry point: both backends agree, and neither reads anything outside the document."""

import importlib.util
import io

import cairosvg
import numpy as np
import pytest
from PIL import Image

from scorer import Scorer
from scorer.config import Limits
from scorer.load import load_svg
from scorer.render import _rasterize_cairosvg, on_white, render

from .conftest import FIXTURES, LADDER, STRUCTURAL, svg

HAVE_RESVG = importlib.util.find_spec("resvg_py") is not None
needs_resvg = pytest.mark.skipif(
    not HAVE_RESVG, reason="resvg_py is not installed (optional extra: pip install -e '.[resvg]')"
)
BACKENDS = ["cairosvg", pytest.param("resvg", marks=needs_resvg)]

SIMPLE = svg(
    '<rect x="20" y="20" width="160" height="100" fill="#3366cc"/>'
    '<circle cx="300" cy="150" r="80" fill="none" stroke="#cc3300" stroke-width="12"/>'
    '<path d="M 40 260 L 360 200" stroke="black" stroke-width="6"/>'
    '<ellipse cx="120" cy="200" rx="50" ry="30" fill="green" fill-opacity="0.5"/>'
)


def _load(text: str):
    return load_svg(text.encode(), Limits())


@needs_resvg
def test_backends_agree_on_a_simple_drawing():
    loaded = _load(SIMPLE)
    cairo, resvg = (render(loaded, 224, backend=b) for b in ("cairosvg", "resvg"))
    assert (cairo.width, cairo.height) == (resvg.width, resvg.height) == (224, 168)
    assert cairo.rgba.dtype == resvg.rgba.dtype == np.uint8
    diff = np.abs(cairo.on_white.astype(np.int16) - resvg.on_white.astype(np.int16))
    assert diff.mean() < 1.0  # anti-aliasing differs a little along edges, nothing more
    assert (diff.max(axis=-1) > 32).mean() < 0.02


@needs_resvg
def test_backends_agree_on_the_off_canvas_window():
    loaded = _load(svg('<rect x="-200" y="0" width="300" height="300" fill="red"/>'))
    cairo, resvg = (render(loaded, 224, margin=1, backend=b) for b in ("cairosvg", "resvg"))
    assert cairo.rgba.shape == resvg.rgba.shape
    diff = np.abs(cairo.on_white.astype(np.int16) - resvg.on_white.astype(np.int16))
    assert diff.mean() < 1.0


@needs_resvg
def test_backends_agree_on_physical_units_and_language_switches():
    # resvg-py defaults to dpi 0 and no languages; svgscore sets 96 dpi (as cairosvg) and "en".
    body = (
        '<rect x="5mm" y="5mm" width="40mm" height="30mm" fill="#3366cc"/>'
        '<switch><rect systemLanguage="en" x="200" y="150" width="150" height="100" fill="green"/>'
        '<rect x="200" y="150" width="150" height="100" fill="red"/></switch>'
    )
    loaded = _load(svg(body))
    cairo, resvg = (render(loaded, 224, backend=b) for b in ("cairosvg", "resvg"))
    assert tuple(resvg.rgba[40, 40]) == (0x33, 0x66, 0xCC, 255)  # inside the mm-sized rect
    assert tuple(resvg.rgba[110, 150]) == (0, 128, 0, 255)  # the English branch of the switch
    diff = np.abs(cairo.on_white.astype(np.int16) - resvg.on_white.astype(np.int16))
    assert (diff.max(axis=-1) > 32).mean() < 0.02


@needs_resvg
def test_resvg_keeps_straight_alpha():
    raster = render(_load(svg('<rect width="400" height="300" fill="#ff0000" fill-opacity="0.5"/>')), 64, backend="resvg")
    r, g, b, a = raster.rgba[32, 32]
    assert (r, g, b) == (255, 0, 0) and 120 <= a <= 135


@needs_resvg
def test_resvg_backend_scores_a_fixture_through_the_config():
    path = next(p for p in LADDER if "05_crude" in p.name)
    results = {}
    for backend in ("cairosvg", "resvg"):
        with Scorer({**STRUCTURAL, "render": {"backend": backend}}, jobs=1) as scorer:
            results[backend] = scorer.score_file(path)
    resvg = results["resvg"]
    assert resvg.ok and resvg.score is not None
    assert resvg.components["renders"].value == 1.0
    assert abs(resvg.score - results["cairosvg"].score) < 5
    assert resvg.config_sha256 != results["cairosvg"].config_sha256


def _blue(raster) -> bool:
    rgb = raster.on_white.astype(np.int16)
    return bool(((rgb[..., 2] > 200) & (rgb[..., 0] < 60) & (rgb[..., 1] < 60)).any())


@pytest.mark.parametrize("backend", BACKENDS)
def test_renderers_never_read_local_files(backend, tmp_path, monkeypatch):
    Image.new("RGB", (8, 8), (0, 0, 255)).save(tmp_path / "blue.png")
    monkeypatch.chdir(tmp_path)  # a relative href would resolve here
    png = tmp_path / "blue.png"
    for href in ("blue.png", "./blue.png", str(png), png.as_uri(), "file:///etc/passwd"):
        for attr in ("href", "xlink:href"):
            doc = (
                '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 400 300">'
                f'<image {attr}="{href}" x="0" y="0" width="400" height="300"/></svg>'
            )
            raster = render(_load(doc), 64, backend=backend)
            assert raster.rgba[..., 3].max() == 0, f"{backend} rendered <image {attr}={href!r}>"
    # <feImage> is another way to pull in a file (resvg honours it unless stopped).
    for href in ("blue.png", str(png)):
        filtered = svg(f'<filter id="f"><feImage href="{href}"/></filter><rect width="400" height="300" filter="url(#f)"/>')
        assert not _blue(render(_load(filtered), 64, backend=backend)), f"{backend} rendered <feImage href={href!r}>"


@pytest.mark.parametrize("backend", BACKENDS)
def test_data_urls_still_render(backend):
    import base64
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (0, 0, 255)).save(buffer, format="PNG")
    href = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    raster = render(_load(svg(f'<image href="{href}" width="400" height="300"/>')), 64, backend=backend)
    assert tuple(raster.rgba[24, 32]) == (0, 0, 255, 255)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_marker_naming_no_marker_draws_the_path_without_it(backend):
    # cairosvg 2.9 alone raised AttributeError on these, losing the whole drawing.
    body = (
        '<defs><marker id="dot" markerWidth="4" markerHeight="4"><circle cx="2" cy="2" r="2"/></marker></defs>'
        '<style>.arrow { marker-end: url(#missing-in-css); }</style>'
        '<path d="M 20 50 L 380 50" stroke="black" stroke-width="8" marker-start="url(#nowhere)"/>'
        '<path class="arrow" d="M 20 150 L 380 150" stroke="black" stroke-width="8" marker-mid="url(#dot)"/>'
        '<path d="M 20 250 L 380 250" stroke="black" stroke-width="8" marker-end="url(http://127.0.0.1:9/m.svg#m)"/>'
    )
    raster = render(_load(svg(body)), 200, backend=backend)
    for y in (25, 75, 125):  # the three strokes, at 200/400 scale
        assert raster.on_white[y, 100].max() < 64


def test_reading_cairos_surface_equals_its_png_bit_for_bit():
    # Semi-transparent strokes, gradients and anti-aliased edges: every alpha from 0 to 255.
    document = svg(
        '<defs><linearGradient id="g"><stop offset="0" stop-color="#f00" stop-opacity="0"/>'
        '<stop offset="1" stop-color="#03c"/></linearGradient></defs>'
        '<rect x="10" y="10" width="380" height="120" fill="url(#g)"/>'
        '<circle cx="200" cy="200" r="80" fill="#3a7" fill-opacity="0.37" stroke="#000" stroke-opacity="0.6" stroke-width="9"/>'
    ).encode()
    with Image.open(io.BytesIO(cairosvg.svg2png(bytestring=document))) as image:
        expected = np.asarray(image.convert("RGBA"))
    actual = _rasterize_cairosvg(document)
    assert len(np.unique(actual[..., 3])) > 100
    assert np.array_equal(actual, expected)


def test_on_white_is_rounded_alpha_compositing():
    c, a = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    rgba = np.stack([c, c, c, a], axis=-1).astype(np.uint8)
    exact = np.floor(c * a / 255 + 255 * (255 - a) / 255 + 0.5)
    assert np.array_equal(on_white(rgba)[..., 0], exact.astype(np.uint8))


# Text in a face at one size, then the same face at another: with hinting, cairo's process-wide
# font caches made the second drawing depend on whether the first had been drawn before it.
_EARLIER_TEXT = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 500 500" width="500" height="500"><text x="250" y="130" font-family="Georgia, serif" font-size="20">Ancient Savanna</text></svg>'
_LATER_TEXT = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 500 500" width="500" height="500"{}><text x="12" y="232" font-family="Georgia, serif" font-size="7">Frontal scapular plane</text></svg>'
_RENDER_IN_ORDER = """
import sys
from scorer.config import Limits
from scorer.load import load_svg
from scorer.render import render
for document in sys.argv[1:]:
    print(render(load_svg(document.encode(), Limits()), 224).sha256())
"""


@pytest.mark.parametrize("asked", ["", ' text-rendering="optimizeLegibility"'])
def test_a_text_render_does_not_depend_on_what_the_process_drew_before(asked):
    """Alone in a fresh process, after other text, and again after that: the same pixels."""
    import subprocess
    import sys

    later = _LATER_TEXT.format(asked)

    def hashes(*documents: str) -> list[str]:
        run = subprocess.run([sys.executable, "-c", _RENDER_IN_ORDER, *documents], capture_output=True, text=True, timeout=120, check=True)
        return run.stdout.split()

    alone = hashes(later)[0]
    assert hashes(_EARLIER_TEXT, later)[1] == alone
    assert hashes(later, _EARLIER_TEXT, later)[::2] == [alone, alone]


# What the memoised parsers see: url() references (fill, mask, filter, clip-path, markers) and
# lengths in every unit, beside the fixtures' own drawings.
_PARSED_STRINGS = svg(
    '<defs><mask id="m"><rect width="400" height="300" fill="#fff"/><circle cx="200" cy="150" r="60" fill="#000"/></mask>'
    '<filter id="f"><feGaussianBlur stdDeviation="2"/></filter><clipPath id="c"><rect width="300" height="200"/></clipPath>'
    '<marker id="a" markerWidth="6" markerHeight="6" refX="3" refY="3"><circle cx="3" cy="3" r="2" fill="red"/></marker>'
    '<linearGradient id="g"><stop offset="0" stop-color="#f00"/><stop offset="1" stop-color="#00f"/></linearGradient></defs>'
    '<rect x="1em" y="5%" width="50%" height="2in" fill="url(#g)" mask="url(#m)"/>'
    '<path d="M 40 260 L 360 200" stroke="black" stroke-width="2px" marker-end="url(#a)" stroke-dasharray="4px, 2"/>'
    '<circle cx="300" cy="100" r="40pt" fill="url(\'#g\')" filter="url(#f)" clip-path="url(#c)"/>'
    '<text x="20" y="280" font-size="1.5em" style="fill: url(#g)">Pelican</text>'
)
_RENDER_HASHES = """
import sys
from pathlib import Path
import scorer.render
from scorer.config import Limits
from scorer.load import load_svg
if sys.argv[1] == "unmemoised":
    scorer.render._memoised_str_parser = lambda parse: parse
for document in sys.argv[2:]:
    data = Path(document).read_bytes() if document.endswith(".svg") else document.encode()
    print(scorer.render.render(load_svg(data, Limits()), 224, margin=1).sha256())
"""


def test_memoised_cairosvg_parsers_change_no_pixel():
    """The fixtures and a drawing of url() references and units, rendered in fresh processes
    with and without the memoised parsers: the same pixels."""
    import subprocess
    import sys

    documents = [str(p) for name in ("ladder", "decoy", "other_prompt", "attacks") for p in sorted((FIXTURES / name).glob("*.svg"))]
    documents.append(_PARSED_STRINGS)

    def hashes(mode: str) -> list[str]:
        run = subprocess.run([sys.executable, "-c", _RENDER_HASHES, mode, *documents], capture_output=True, text=True, timeout=300, check=True)
        return run.stdout.split()

    memoised = hashes("memoised")
    assert len(memoised) == len(documents) > 10
    assert hashes("unmemoised") == memoised


def test_memoised_parsers_remember_only_short_single_strings():
    from scorer.render import _MEMO_MAX_CHARS, _memoised_str_parser

    calls = []

    def parse(string, base=None):
        calls.append((string, base))
        return (string, base)

    memoised = _memoised_str_parser(parse)
    assert memoised("url(#a)") == memoised("url(#a)") == ("url(#a)", None) and len(calls) == 1
    assert memoised(None) == memoised(None) == (None, None) and len(calls) == 2
    long = "M 0 0 " + "L 1 1 " * _MEMO_MAX_CHARS  # path data: parsed each time, never kept
    memoised(long), memoised(long)
    memoised("a.svg", "/some/base"), memoised("a.svg", "/some/base")  # a base reads the file system
    assert len(calls) == 6


def test_every_cairosvg_module_uses_the_memoised_parsers():
    """Fails when a cairosvg release moves or renames them: the speed-up would silently go."""
    import sys

    render(_load(SIMPLE), 64)
    for name, home, users in (
        ("normalize", "cairosvg.helpers", ("bounding_box", "path", "shapes", "surface", "text")),
        ("parse_url", "cairosvg.url", ("bounding_box", "defs", "helpers", "parser", "path", "surface", "text")),
    ):
        memoised = getattr(sys.modules[home], name)
        assert memoised.__wrapped__.__module__ == home  # the original, wrapped
        assert all(getattr(sys.modules[f"cairosvg.{user}"], name) is memoised for user in users)
