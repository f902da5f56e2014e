"""Craft checks (scorer/measure/craft.py): each defence has an attack that would raise the value without it.

Attacks are built inline on the ladder's honest drawings: copies of every element, one shape
×1000, shapes at zero opacity, off the canvas or under an opaque shape, and the noise fixture.
"""

from __future__ import annotations

import re

import pytest

from scorer import ScoreItem, Scorer

from .conftest import FIXTURES

CRAFT = ("detail", "layering", "shading")
CRUDE = (FIXTURES / "ladder" / "05_crude_pelican_on_bicycle.svg").read_text()
CAREFUL = (FIXTURES / "ladder" / "06_careful_pelican_on_bicycle.svg").read_text()
NOISE = (FIXTURES / "attacks" / "noise_shapes.svg").read_text()
# A small, layered, shaded honest drawing: a gradient body, a patch, an eye and its highlight.
SHADED = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 200 200">
<defs><radialGradient id="g"><stop offset="0" stop-color="#fc8"/><stop offset="1" stop-color="#a40"/></radialGradient></defs>
<rect width="200" height="200" fill="#eef"/>
<ellipse cx="100" cy="110" rx="70" ry="55" fill="url(#g)"/>
<ellipse cx="100" cy="125" rx="35" ry="25" fill="#fed"/>
<circle cx="80" cy="90" r="12" fill="#fff"/><circle cx="80" cy="90" r="6" fill="#222"/><circle cx="78" cy="88" r="2" fill="#fff"/>
<path d="M100 60 Q120 30 140 50" stroke="#630" stroke-width="4" fill="none"/>
</svg>"""
SHAPE = '<circle cx="{x}" cy="{y}" r="{r}" fill="{fill}"{extra}/>'


def body(document: str) -> str:
    return re.search(r"<svg[^>]*>(.*)</svg>", document, re.S).group(1)


def inject(document: str, extra: str) -> str:
    return document.replace("</svg>", extra + "</svg>")


def shapes(count: int, **kw) -> str:
    """``count`` distinct small circles spread over a 400×300 area (the ladder's canvas)."""
    return "".join(
        SHAPE.format(x=20 + (i * 37) % 360, y=20 + (i * 53) % 260, r=4 + i % 5, fill=kw.get("fill", f"#{(i * 97) % 256:02x}40c0"), extra=kw.get("extra", ""))
        for i in range(count)
    )


@pytest.fixture(scope="module")
def measure():
    config = {"clip": {"enabled": False}, "checks": {name: {"weight": 1.0} for name in CRAFT}}
    with Scorer(config, jobs=1) as scorer:

        def run(*documents: str) -> list[dict[str, float]]:
            items = [ScoreItem(path=None, prompt="a drawing", data=d.encode()) for d in documents]
            return [{n: c.value for n, c in r.components.items()} for r in scorer.score_items(items)]

        yield run


def assert_not_raised(honest: dict[str, float], attacked: dict[str, float], checks=CRAFT) -> None:
    for name in checks:
        assert attacked[name] <= honest[name] + 1e-9, f"{name}: {honest[name]:.3f} → {attacked[name]:.3f}"


def test_careful_beats_crude_on_every_craft_check(measure):
    crude, careful = measure(CRUDE, CAREFUL)
    for name in CRAFT:
        assert careful[name] > crude[name], name


def test_duplicated_elements_do_not_count(measure):
    # Without merging copies by outline, every element twice doubles the parts and stacks each shape on itself.
    for honest in (CRUDE, SHADED):
        plain, doubled = measure(honest, inject(honest, body(honest)))
        assert_not_raised(plain, doubled)


def test_bloat_same_shape_a_thousand_times_does_not_count(measure):
    extra = SHAPE.format(x=60, y=60, r=10, fill="#c33", extra="")
    once, bloated = measure(inject(CRUDE, extra), inject(CRUDE, extra * 1000))
    assert_not_raised(once, bloated)  # one part, however often it is written


def test_zero_opacity_shapes_do_not_count(measure):
    # Without the render test (outline shown as an edge), 60 invisible parts would add detail and layers.
    plain, hidden = measure(CRUDE, inject(CRUDE, shapes(60, extra=' opacity="0"') + shapes(60, extra=' fill-opacity="0"')))
    assert_not_raised(plain, hidden)


def test_off_canvas_shapes_do_not_count(measure):
    off = '<g transform="translate(1000,1000)">' + shapes(60) + "</g>"
    plain, attacked = measure(CRUDE, inject(CRUDE, off))
    assert_not_raised(plain, attacked)


def test_fully_covered_shapes_do_not_count(measure):
    # 60 shapes painted first, then an opaque sky over the whole canvas and the drawing on top of it.
    head, rest = re.match(r"(.*?<svg[^>]*>)(.*)", CRUDE, re.S).groups()
    covered = head + shapes(60) + '<rect x="0" y="0" width="400" height="300" fill="#ffffff"/>' + rest
    plain, attacked = measure(CRUDE, covered)
    assert_not_raised(plain, attacked)


def test_shapes_painted_like_their_surroundings_do_not_count(measure):
    # Painted on the backdrop, in its colour (and under the body where they overlap it): nothing shows.
    backdrop = '<rect width="200" height="200" fill="#eef"/>'
    plain, attacked = measure(SHADED, SHADED.replace(backdrop, backdrop + shapes(40, fill="#eeeeff")))
    assert_not_raised(plain, attacked)


@pytest.mark.parametrize("honest", [CRUDE, CAREFUL, SHADED], ids=["crude", "careful", "shaded"])
def test_noise_does_not_raise_any_craft_check(measure, honest):
    # Without the noise factor, 3000 random shapes are thousands of parts stacked 13 deep; without
    # the edge and speck rules, the blur between tiny shapes would read as soft shading.
    # The noise fixture's 400×300 canvas is scaled onto the drawing's own.
    scale = 0.5 if honest is SHADED else 1.0
    plain, noisy = measure(honest, inject(honest, f'<g transform="scale({scale})">{body(NOISE)}</g>'))
    assert_not_raised(plain, noisy)


def test_noise_fixture_is_below_the_crude_drawing(measure):
    crude, noise = measure(CRUDE, NOISE)
    assert_not_raised(crude, noise, ("detail", "layering"))
    assert noise["shading"] < 0.05


def test_viewbox_compliance():
    from scorer import score_svg

    config = {"clip": {"enabled": False}, "checks": {"prompt_viewbox": {"weight": 1.0}, "not_blank": {"weight": 1.0}}}
    prompt = "A harbour at dawn (viewBox 0 0 2000 1200), warm light"
    drawn = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="{}"><rect x="10%" y="10%" width="50%" height="50%" fill="#246"/></svg>'
    right = score_svg(drawn.format("0 0 2000 1200"), prompt=prompt, config=config)
    wrong = score_svg(drawn.format("0 0 500 500"), prompt=prompt, config=config)
    other = score_svg(drawn.format("0 0 500 500"), prompt="a harbour at dawn", config=config)
    assert right.components["prompt_viewbox"].value == 1.0
    assert wrong.components["prompt_viewbox"].value == 0.0
    assert other.components["prompt_viewbox"].value is None  # the prompt states no viewBox
