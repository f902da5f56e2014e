"""Stage 3: the structural checks, through the public API with CLIP off."""

import pytest

from scorer.measure.registry import load_measures

from .conftest import BROKEN, LADDER, svg

PROMPT = "a pelican riding a bicycle"
WHEELS = '<circle cx="110" cy="220" r="50" fill="none" stroke="#000" stroke-width="6"/>' \
         '<circle cx="290" cy="220" r="50" fill="none" stroke="#000" stroke-width="6"/>'
FRAME = '<path d="M110 220 L180 150 L260 150 L290 220 M180 150 L200 220 L110 220" fill="none" stroke="#c00" stroke-width="6"/>'
RIDER = '<ellipse cx="200" cy="110" rx="60" ry="35" fill="#eee" stroke="#333"/>'


def values(result):
    return {name: c.value for name, c in result.components.items()}


def test_ladder_is_ordered_by_the_structural_score(structural):
    # The strict, rung-by-rung version (the packaged structural config) is in test_antigaming.py.
    scores = [structural.score_file(p, PROMPT).score for p in LADDER]
    assert scores[0] == 0  # the not_blank gate
    assert scores == sorted(scores) and len(set(scores)) == len(scores)


def test_broken_files_become_error_rows(structural):
    results = list(structural.score_items(structural_items(BROKEN)))
    assert [r.status for r in results] == ["error"] * len(BROKEN)
    assert all(r.score is None and r.error.code == "parse_error" and r.components == {} for r in results)
    assert all(len(r.sha256) == 64 for r in results)


def structural_items(paths):
    from scorer import ScoreItem

    return [ScoreItem(path=str(p), prompt=PROMPT) for p in paths]


def test_bicycle_from_circle_elements_with_frame(structural):
    result = structural.score_svg(svg(WHEELS + FRAME), PROMPT)
    c = result.components["bicycle_present"]
    assert c.value == pytest.approx(1.0)
    assert "drawn elements" in c.explanation


def test_wheels_without_frame_score_partially(structural):
    assert structural.score_svg(svg(WHEELS), PROMPT).components["bicycle_present"].value == pytest.approx(0.6)


def test_wheels_reused_through_use_and_transforms(structural):
    body = (
        '<defs><g id="w"><circle r="50" fill="none" stroke="#000" stroke-width="6"/>'
        '<circle r="6" fill="#000"/></g></defs>'
        '<use href="#w" x="110" y="220"/><g transform="translate(290 220)"><use href="#w"/></g>' + FRAME
    )
    assert structural.score_svg(svg(body), PROMPT).components["bicycle_present"].value == pytest.approx(1.0)


def test_wheels_drawn_as_arc_paths(structural):
    arcs = "".join(
        f'<path d="M{x - 50} 220 A50 50 0 1 0 {x + 50} 220 A50 50 0 1 0 {x - 50} 220 Z" fill="none" stroke="#000" stroke-width="6"/>'
        for x in (110, 290)
    )
    assert structural.score_svg(svg(arcs + FRAME), PROMPT).components["bicycle_present"].value == pytest.approx(1.0)


def test_wheels_only_visible_in_the_render_are_found_by_hough(structural):
    # Fully rounded rects are circles on screen but squares in the geometry.
    rounded = "".join(
        f'<rect x="{x - 50}" y="170" width="100" height="100" rx="50" fill="none" stroke="#000" stroke-width="8"/>'
        for x in (110, 290)
    )
    c = structural.score_svg(svg(rounded + FRAME), PROMPT).components["bicycle_present"]
    assert c.value >= 0.6
    assert "Hough" in c.explanation


def test_squares_side_by_side_are_not_wheels(structural):
    squares = "".join(f'<rect x="{x - 50}" y="170" width="100" height="100" fill="#345"/>' for x in (110, 290))
    assert structural.score_svg(svg(squares + FRAME), PROMPT).components["bicycle_present"].value < 0.6


def test_stacked_circles_are_not_a_bicycle(structural):
    stacked = '<circle cx="200" cy="80" r="50" fill="#000"/><circle cx="200" cy="220" r="50" fill="#000"/>'
    assert structural.score_svg(svg(stacked), PROMPT).components["bicycle_present"].value < 0.6


def test_rider_needs_a_body_above_the_wheels(structural):
    bare = structural.score_svg(svg(WHEELS + FRAME), PROMPT)
    ridden = structural.score_svg(svg(WHEELS + FRAME + RIDER), PROMPT)
    beside = structural.score_svg(svg(WHEELS + FRAME + RIDER.replace('cx="200" cy="110"', 'cx="200" cy="-200"')), PROMPT)
    assert values(bare)["rider_on_bicycle"] == 0
    assert values(ridden)["rider_on_bicycle"] == pytest.approx(1.0)
    assert values(beside)["rider_on_bicycle"] == 0


def test_labels_do_not_change_the_score(structural):
    plain = (LADDER[1]).read_text()
    decoy = (LADDER[1].parent.parent / "decoy" / "label_decoy.svg").read_text()
    a, b = structural.score_svg(plain, PROMPT), structural.score_svg(decoy, PROMPT)
    assert a.score == b.score
    assert values(a) == values(b)


def test_subject_checks_do_not_apply_to_other_prompts(structural):
    drawing = svg(WHEELS + FRAME + RIDER)
    turtle = structural.score_svg(drawing, "a turtle wearing roller skates")
    for name in ("bicycle_present", "rider_on_bicycle"):
        c = turtle.components[name]
        assert c.value is None and "not applicable" in c.explanation
    assert turtle.score is not None
    # A bicycle with no riding word: the bicycle check applies, the rider check does not.
    parked = structural.score_svg(drawing, "a red bicycle")
    assert parked.components["bicycle_present"].value == pytest.approx(1.0)
    assert parked.components["rider_on_bicycle"].value is None


def test_off_canvas_content_lowers_within_canvas(structural):
    inside = structural.score_svg(svg(WHEELS + FRAME + RIDER), PROMPT)
    shifted = structural.score_svg(svg(f'<g transform="translate(250 0)">{WHEELS + FRAME + RIDER}</g>'), PROMPT)
    gone = structural.score_svg(svg(f'<g transform="translate(1000 0)">{WHEELS + FRAME + RIDER}</g>'), PROMPT)
    assert values(inside)["within_canvas"] == pytest.approx(1.0)
    assert 0.05 < values(shifted)["within_canvas"] < 0.7
    # Entirely off-screen: nothing on the canvas, so the blank gate closes.
    assert gone.score == 0 and values(gone)["not_blank"] == 0


def test_oversized_background_is_not_off_canvas_content(structural):
    backdrop = '<rect x="-1000" y="-1000" width="3000" height="3000" fill="#9cf"/>'
    result = structural.score_svg(svg(backdrop + WHEELS + FRAME), PROMPT)
    assert values(result)["within_canvas"] == pytest.approx(1.0)


def test_blank_and_near_blank_are_gated_to_zero(structural):
    background_only = structural.score_svg(svg('<rect width="400" height="300" fill="#123456"/>'), PROMPT)
    speck = structural.score_svg(svg('<rect width="400" height="300" fill="#fff"/><circle cx="5" cy="5" r="2"/>'), PROMPT)
    assert background_only.score == 0 and speck.score == 0
    assert "gated" in speck.summary


def test_element_count_ramps_then_decays(structural):
    def count_value(n):
        dots = "".join(f'<circle cx="{(i * 37) % 400}" cy="{(i * 53) % 300}" r="3"/>' for i in range(n))
        return values(structural.score_svg(svg(dots), PROMPT))["element_count"]

    assert count_value(2) < count_value(8) < count_value(30) == 1.0
    assert count_value(3000) < 1.0


def test_closed_paths_counts_open_strokes(structural):
    result = structural.score_svg(svg('<rect width="10" height="10"/><path d="M0 0 L5 5"/><path d="M0 0 L5 5 L0 5 Z"/>'), PROMPT)
    assert values(result)["closed_paths"] == pytest.approx(2 / 3)
    assert result.components["closed_paths"].details == {"closed": 2, "shapes": 3}


def test_every_check_value_is_in_range_and_explained(structural):
    for path in LADDER:
        result = structural.score_file(path, PROMPT)
        assert result.ok and result.components, result.summary  # an error row has no components to check
        for name, c in result.components.items():
            assert c.value is None or 0.0 <= c.value <= 1.0, name
            assert c.explanation, name


def test_registry_lists_the_documented_checks():
    known = load_measures()
    assert {"parses", "renders", "not_blank", "bicycle_present", "closed_paths", "element_count", "within_canvas"} <= set(known)
    assert all(m.description for m in known.values())
    assert known["clip"].kind == "batched" and known["parses"].kind == "per_file"
    assert {m.origin.source for m in known.values()} >= {"svgscore (built-in)"}


def test_percentage_sized_gradient_backdrop_stays_on_canvas(structural):
    backdrop = (
        '<defs><linearGradient id="sky" x2="0" y2="1"><stop offset="0" stop-color="#4fc3f7"/>'
        '<stop offset="1" stop-color="#e1f5fe"/></linearGradient></defs>'
        '<rect width="100%" height="100%" fill="url(#sky)"/>'
    )
    result = structural.score_svg(svg(backdrop + WHEELS + FRAME), PROMPT)
    assert values(result)["within_canvas"] == pytest.approx(1.0)


@pytest.mark.parametrize("seed", range(6))
def test_hough_search_equals_scikit_images_full_peak_search(seed):
    """The peak search skips radii without a vote above the threshold: same circles as searching all."""
    import numpy as np
    from skimage.draw import circle_perimeter
    from skimage.transform import hough_circle, hough_circle_peaks

    from scorer.measure.checks import hough_circles

    rng = np.random.default_rng(seed)
    edges = rng.random((160, 200)) < 0.01 * seed  # seed 0: no noise; later: more and more
    for _ in range(seed % 4 + 1):
        rows, cols = circle_perimeter(int(rng.integers(30, 130)), int(rng.integers(30, 170)), 2 * int(rng.integers(4, 20)), shape=edges.shape)  # radii the search tries
        kept = rng.random(len(rows)) < rng.uniform(0.45, 0.6)  # broken outlines: votes near the threshold
        edges[rows[kept], cols[kept]] = True
    radii = np.arange(6, 56, 2)
    _, xs, ys, rs = hough_circle_peaks(hough_circle(edges, radii), radii, min_xdistance=6, min_ydistance=6, threshold=0.55, total_num_peaks=8)
    full = list(zip(xs.tolist(), ys.tolist(), rs.tolist(), strict=True))
    assert hough_circles(edges, radii, 6) == full
