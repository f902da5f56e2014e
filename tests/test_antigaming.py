"""Anti-gaming: the quality ladder, attacks, metamorphic invariances (the packaged structural config, CLIP off).

Each defence has a test that fails without it: the attack is scored once with the full config
and once with that defence's gate removed (`ungated`), and only the gate stands between them.
<text> is handled apart: CLIP is shown the render without it, and prompt_text costs its weight.
"""

from __future__ import annotations

import re
from functools import partial
from itertools import pairwise
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from scorer import ScoreItem, Scorer
from scorer.config import Limits
from scorer.load import load_svg
from scorer.measure.geometry import extract_geometry

from .conftest import FIXTURES, LADDER, REPO, svg

PROMPT = "a pelican riding a bicycle"
ATTACKS = sorted((FIXTURES / "attacks").glob("*.svg"))
CRUDE = FIXTURES / "ladder" / "05_crude_pelican_on_bicycle.svg"
SIMPLE = FIXTURES / "ladder" / "05b_simple_pelican_on_bicycle.svg"
CAREFUL = FIXTURES / "ladder" / "06_careful_pelican_on_bicycle.svg"
STRUCTURAL_YAML = REPO / "scorer" / "configs" / "structural.yaml"
DEFENCES = ("outlined_text", "embedded_raster", "contrast", "display_size")
# How far a meaning-preserving rewrite (translate, scale, re-serialise, shapes → paths) may move a score.
TOLERANCE = 3.0


def needs_ocr() -> None:
    pytest.importorskip("rapidocr_onnxruntime", reason="the ocr extra is not installed")


def structural_config(**changes: dict) -> dict:
    config = yaml.safe_load(STRUCTURAL_YAML.read_text())
    for name, change in changes.items():
        config["checks"][name] = {**config["checks"][name], **change}
    return config


@pytest.fixture(scope="module")
def judge():
    with Scorer(STRUCTURAL_YAML, jobs=2) as scorer:
        yield scorer


@pytest.fixture(scope="module")
def ungated():
    """The same judge with every anti-gaming gate removed: what the attacks would get without the defences."""
    with Scorer(structural_config(**{name: {"gate": None} for name in DEFENCES}), jobs=2) as scorer:
        yield scorer


def score_all(scorer: Scorer, documents: list[str | bytes | Path], prompt: str = PROMPT) -> list:
    items = [
        ScoreItem(path=str(d), prompt=prompt) if isinstance(d, Path)
        else ScoreItem(path=None, prompt=prompt, data=d.encode() if isinstance(d, str) else d)
        for d in documents
    ]
    return list(scorer.score_items(items))


@pytest.fixture(scope="module")
def fixture_scores(judge):
    paths = LADDER + ATTACKS
    return {p.name: r for p, r in zip(paths, score_all(judge, paths), strict=True)}


# -- the ladder and the attacks ------------------------------------------------------------------


def test_the_ladder_has_at_least_eight_rungs_and_is_strictly_monotone(fixture_scores):
    scores = [fixture_scores[p.name].score for p in LADDER]
    assert len(LADDER) >= 8
    assert all(low < high for low, high in pairwise(scores)), dict(zip((p.name for p in LADDER), scores, strict=False))


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda p: p.stem)
def test_every_attack_scores_below_the_honest_crude_drawing(fixture_scores, attack):
    result, crude = fixture_scores[attack.name], fixture_scores[CRUDE.name]
    assert result.ok
    assert result.score < crude.score, result.summary
    assert "Attack fixture:" in attack.read_text()  # each says what it attacks


@pytest.mark.parametrize(
    ("attack", "defence", "beats_crude_without_it"),
    [
        ("glyphs_prompt", "outlined_text", False),
        ("glyphs_labels_on_crude", "outlined_text", True),
        ("embedded_photo", "embedded_raster", False),  # structurally weak anyway; CLIP would love it
        # The craft checks (detail, layering, shading) already see little of it — its parts barely
        # differ from their surroundings — so it falls just below the crude drawing even ungated.
        ("dark_on_dark", "contrast", False),
        ("tiny_declared_size", "display_size", True),
    ],
)
def test_each_defence_is_what_stops_its_attack(fixture_scores, ungated, attack, defence, beats_crude_without_it):
    if attack.startswith("glyphs"):
        needs_ocr()
    defended = fixture_scores[f"{attack}.svg"]
    assert defended.score == 0 and f"gated to 0: {defence}" in defended.summary
    [undefended] = score_all(ungated, [FIXTURES / "attacks" / f"{attack}.svg"])
    assert undefended.score > 0
    assert (undefended.score > fixture_scores[CRUDE.name].score) == beats_crude_without_it


def test_clip_never_sees_text_and_captions_cost_their_weight(judge):
    from scorer.config import load_config
    from scorer.pipeline import FileTask, make_analyzer

    analyze = make_analyzer(load_config(STRUCTURAL_YAML))
    labelled = FIXTURES / "attacks" / "text_labels_on_crude.svg"
    seen, crude_seen = (analyze(FileTask(p.read_bytes(), PROMPT)) for p in (labelled, CRUDE))
    assert (seen.image == crude_seen.image).all()  # the labels are gone from CLIP's picture...
    assert seen.render.sha256 != crude_seen.render.sha256  # ...not from the render the checks see
    component = seen.components["prompt_text"]
    assert component.value == 0 and {"pelican (<text>)", "bicycle (<text>)"} <= set(component.details["prompt_words_written"])
    with Scorer(structural_config(prompt_text={"weight": 0.0}), jobs=1) as lenient:
        crude, fooled = score_all(lenient, [CRUDE, labelled])
    assert fooled.score > crude.score  # without the penalty, labels add "elements" and win


def test_outlined_words_are_read_by_ocr_and_nothing_else(fixture_scores):
    needs_ocr()
    glyphs = fixture_scores["glyphs_labels_on_crude.svg"]
    assert glyphs.components["prompt_text"].value == 1  # outlines are invisible to the tree...
    assert "drawn as outlines" in glyphs.components["outlined_text"].explanation  # ...and read on the render


def test_ocr_is_deterministic_and_quiet_on_honest_drawings(fixture_scores):
    needs_ocr()
    from scorer.measure import ocr

    for path in LADDER:
        component = fixture_scores[path.name].components["outlined_text"]
        assert component.value == 1 and not component.explanation.startswith("not checked"), path.name
    image = _render(FIXTURES / "attacks" / "glyphs_prompt.svg")
    first = ocr.read_lines(image, side=448, min_confidence=0.6)
    assert first == ocr.read_lines(image, side=448, min_confidence=0.6)
    assert {"pelican", "bicycle"} <= {text.lower() for text, _ in first}


def test_missing_ocr_says_unavailable_and_leaves_the_gate_open(monkeypatch):
    from scorer.measure import defences, ocr

    monkeypatch.setitem(__import__("sys").modules, "rapidocr_onnxruntime", None)  # import now fails
    ocr.unavailable.cache_clear()
    ocr._engine.cache_clear()
    try:
        drawing = _drawing((FIXTURES / "attacks" / "glyphs_prompt.svg").read_bytes())
        found = defences.outlined_text(drawing, defences.OutlinedTextParams())
        assert found.value == 1 and found.explanation.startswith("not checked: OCR unavailable")
        assert "svgscore[ocr]" in found.explanation
    finally:
        ocr.unavailable.cache_clear()
        ocr._engine.cache_clear()


def test_prompt_words_match_through_case_spacing_synonyms_and_misreads():
    from scorer.measure.defences import mentions, prompt_words

    words = prompt_words(PROMPT)
    assert {"pelican", "riding", "bicycle", "bike"} <= set(words) and "a" not in words and "bikes" not in words
    assert mentions("A PELI CAN!", "pelican", 0.8) and mentions("elican", "pelican", 0.8)
    assert not mentions("a pretty sunset", "pelican", 0.8)


def test_random_noise_finds_wheels_only_by_chance(judge):
    relaxed = {"params": {"max_wheel_candidates": 100_000}}
    noise = FIXTURES / "attacks" / "noise_shapes.svg"
    [strict] = score_all(judge, [noise])
    with Scorer(structural_config(bicycle_present=relaxed, rider_on_bicycle=relaxed), jobs=1) as credulous:
        [fooled] = score_all(credulous, [noise])
    assert fooled.components["bicycle_present"].value >= 0.6  # some random pair always looks like wheels
    assert strict.components["bicycle_present"].value < 0.1 and "chance" in strict.components["bicycle_present"].explanation
    assert strict.components["rider_on_bicycle"].value < 0.1


# -- composition -------------------------------------------------------------------------------------

WHEELS = ''.join(f'<circle cx="{x}" cy="220" r="50" fill="none" stroke="#000" stroke-width="6"/>' for x in (110, 290))
FRAME = '<path d="M110 220 L180 150 L260 150 L290 220 M180 150 L200 220 L110 220" fill="none" stroke="#c00" stroke-width="6"/>'


def test_a_pelican_beside_the_bicycle_scores_below_one_riding_it(fixture_scores):
    beside, riding = fixture_scores["04b_pelican_beside_bicycle.svg"], fixture_scores[CRUDE.name]
    assert beside.components["bicycle_present"].value > 0.9 and beside.components["pelican_features"].value == 1
    assert beside.components["rider_on_bicycle"].value == 0 < beside.components["rider_on_bicycle"].details["beside_area_r2"]
    assert riding.components["rider_on_bicycle"].value == 1
    assert beside.score < riding.score


def test_mass_beside_the_bicycle_outweighs_a_small_shape_above_it(judge):
    small_above = '<ellipse cx="200" cy="120" rx="50" ry="30" fill="#eee" stroke="#333"/>'
    big_beside = '<ellipse cx="380" cy="170" rx="45" ry="60" fill="#eee" stroke="#333"/>'
    on, mixed = score_all(judge, [svg(WHEELS + FRAME + small_above), svg(WHEELS + FRAME + small_above + big_beside, "0 0 460 300")])
    assert on.components["rider_on_bicycle"].value == pytest.approx(1.0)
    # Same body above the wheels, but most of the figure stands next to the bicycle.
    assert mixed.components["rider_on_bicycle"].value < 0.5


# -- labels are not meaning ------------------------------------------------------------------------


def neutralise_labels(document: bytes) -> bytes:
    """The same drawing without names: ids renamed i0, i1… (references follow), no classes, titles,
    descriptions, metadata, comments, aria-*/data-* attributes."""
    root = etree.fromstring(document, etree.XMLParser(remove_comments=True))
    renames = {el.get("id"): f"i{n}" for n, el in enumerate(root.iter()) if isinstance(el.tag, str) and el.get("id")}

    def follow(match: re.Match[str]) -> str:
        return "#" + renames.get(match.group(1), match.group(1))

    for el in list(root.iter()):
        if not isinstance(el.tag, str):
            continue
        if etree.QName(el).localname in ("title", "desc", "metadata"):
            el.getparent().remove(el)
            continue
        for name, value in list(el.attrib.items()):
            if name == "class" or name.startswith(("aria-", "data-")):
                del el.attrib[name]
            elif name == "id":
                el.set(name, renames[value])
            else:
                el.set(name, re.sub(r"#([\w.-]+)", follow, value))
    return etree.tostring(root)


def test_stripping_every_label_leaves_every_score_bit_identical(judge, fixture_scores):
    paths = LADDER + ATTACKS + [FIXTURES / "decoy" / "label_decoy.svg"]
    stripped = score_all(judge, [neutralise_labels(p.read_bytes()) for p in paths])
    originals = [fixture_scores.get(p.name) or score_all(judge, [p])[0] for p in paths]
    for path, before, after in zip(paths, originals, stripped, strict=True):
        assert after.score == before.score, path.name
        assert {n: (c.value, c.details) for n, c in after.components.items()} == {
            n: (c.value, c.details) for n, c in before.components.items()
        }, path.name
        assert after.render.sha256 == before.render.sha256, path.name


# -- invariances -----------------------------------------------------------------------------------


def _drawing(data: bytes):
    from scorer.measure.drawing import OUTER_MARGIN, Drawing
    from scorer.render import render

    loaded = load_svg(data, Limits())
    return Drawing(loaded, PROMPT, render(loaded, 224, margin=OUTER_MARGIN), partial(render, size=224))


def _render(path: Path):
    return _drawing(path.read_bytes()).raster.on_white


def _inner(path: Path) -> tuple[str, tuple[float, float, float, float]]:
    """The drawing's markup inside its root, and the bounding box of what it draws (backdrop aside)."""
    text = path.read_text()
    loaded = load_svg(text.encode(), Limits())
    boxes = [s.bbox for s in extract_geometry(loaded.root, loaded.canvas).shapes if (s.bbox[2] - s.bbox[0]) < 390]
    start = text.index(">", text.index("<svg")) + 1
    box = (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))
    return text[start : text.rindex("</svg>")], box


@pytest.fixture(scope="module")
def base_scores(judge):
    return dict(zip(("crude", "simple"), (r.score for r in score_all(judge, [CRUDE, SIMPLE])), strict=True))


@settings(max_examples=6, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    which=st.sampled_from(["crude", "simple"]),
    scale=st.floats(0.7, 1.0),
    fx=st.floats(0.0, 1.0),
    fy=st.floats(0.0, 1.0),
)
def test_moving_and_scaling_the_drawing_inside_its_viewbox_barely_moves_the_score(judge, base_scores, which, scale, fx, fy):
    inner, (x0, y0, x1, y1) = _inner(CRUDE if which == "crude" else SIMPLE)
    # Scale about the drawing's corner, then place it anywhere it still fits inside the 400×300 canvas.
    width, height = (x1 - x0) * scale, (y1 - y0) * scale
    dx, dy = fx * (400 - width) - x0 * scale, fy * (300 - height) - y0 * scale
    moved = svg(f'<g transform="translate({dx:.3f} {dy:.3f}) scale({scale:.4f})">{inner}</g>')
    [result] = score_all(judge, [moved])
    assert abs(result.score - base_scores[which]) <= TOLERANCE, result.summary


def reserialised(document: bytes) -> bytes:
    """Attributes in reverse order, every element on its own indented line, double → single quotes."""
    root = etree.fromstring(document)
    for el in root.iter():
        if isinstance(el.tag, str):
            items = list(el.attrib.items())
            el.attrib.clear()
            for name, value in reversed(items):
                el.set(name, value)
    etree.indent(root, space="    ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8").replace(b'"', b"'")


def shapes_as_paths(document: bytes) -> bytes:
    """Every circle, ellipse, rect (square-cornered), line, polyline and polygon as the equivalent <path>."""
    root = etree.fromstring(document)
    for el in list(root.iter()):
        if not isinstance(el.tag, str):
            continue
        tag = etree.QName(el).localname
        n = {k: float(el.get(k, "0")) for k in ("cx", "cy", "r", "rx", "ry", "x", "y", "width", "height", "x1", "y1", "x2", "y2")}
        if tag in ("circle", "ellipse"):
            rx, ry = (n["r"], n["r"]) if tag == "circle" else (n["rx"], n["ry"])
            d = f"M{n['cx'] - rx} {n['cy']} A{rx} {ry} 0 1 0 {n['cx'] + rx} {n['cy']} A{rx} {ry} 0 1 0 {n['cx'] - rx} {n['cy']} Z"
        elif tag == "rect" and "rx" not in el.attrib:
            d = f"M{n['x']} {n['y']} h{n['width']} v{n['height']} h{-n['width']} Z"
        elif tag == "line":
            d = f"M{n['x1']} {n['y1']} L{n['x2']} {n['y2']}"
        elif tag in ("polyline", "polygon"):
            d = "M" + el.get("points") + (" Z" if tag == "polygon" else "")
        else:
            continue
        for key in ("cx", "cy", "r", "rx", "ry", "x", "y", "width", "height", "x1", "y1", "x2", "y2", "points"):
            el.attrib.pop(key, None)
        el.tag = el.tag.rsplit("}", 1)[0] + "}path" if "}" in el.tag else "path"
        el.set("d", d)
    return etree.tostring(root)


def test_rewrites_that_keep_the_picture_keep_the_score(judge):
    sources = [CRUDE, SIMPLE, CAREFUL]
    originals = score_all(judge, sources)
    rewritten = score_all(judge, [reserialised(p.read_bytes()) for p in sources] + [shapes_as_paths(p.read_bytes()) for p in sources])
    for original, serial, paths in zip(originals, rewritten[:3], rewritten[3:], strict=True):
        assert serial.score == original.score  # same tree, same render: identical
        assert abs(paths.score - original.score) <= TOLERANCE, paths.summary


def test_a_white_background_does_not_help(judge):
    careful = CAREFUL.read_text()
    white = careful.replace('fill="url(#sky)"', 'fill="#ffffff"', 1)
    assert white != careful
    original, whitened = score_all(judge, [CAREFUL, white])
    assert whitened.score <= original.score + TOLERANCE / 3


def test_xlink_references_survive_neutralising():
    # The metamorphic test above is only meaningful if the rewrite keeps <use> and paint references.
    stripped = neutralise_labels(CAREFUL.read_bytes()).decode()
    assert 'href="#i' in stripped and "url(#i" in stripped and "<title" not in stripped
