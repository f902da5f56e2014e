"""scorer.testing.assert_svg_score: passes quietly, fails with the components spelled out."""

import pytest

from scorer import testing
from scorer.testing import assert_svg_score

from .conftest import BROKEN, FIXTURES, STRUCTURAL

CAREFUL = FIXTURES / "ladder" / "06_careful_pelican_on_bicycle.svg"
BICYCLE_ONLY = FIXTURES / "ladder" / "03_bicycle_only.svg"


def test_passes_and_returns_the_result():
    result = assert_svg_score(CAREFUL, min=50, config=STRUCTURAL)
    assert result.ok and result.score >= 50


def test_failure_lists_every_component():
    with pytest.raises(AssertionError) as info:
        assert_svg_score(BICYCLE_ONLY, min=99, config=STRUCTURAL)
    message = str(info.value)
    assert message.startswith(f"{BICYCLE_ONLY} scored ") and "below the minimum 99 (prompt: 'a pelican riding a bicycle')" in message
    for name in ("parses", "bicycle_present", "rider_on_bicycle", "element_count"):
        assert f"\n  {name} " in message
    assert "solid shapes above the wheels" in message  # the explanation says why


def test_an_unscorable_file_says_why():
    with pytest.raises(AssertionError, match=r"could not be scored \(parse_error: "):
        assert_svg_score(BROKEN[0], min=0, config=STRUCTURAL)


def test_calls_with_the_same_config_share_one_scorer(monkeypatch):
    monkeypatch.setattr(testing, "_scorers", {})  # whatever other tests left behind
    config = {**STRUCTURAL, "render": {"size": 200}}
    assert_svg_score(CAREFUL, min=0, config=config)
    [first] = testing._scorers.values()
    assert_svg_score(BICYCLE_ONLY, min=0, config=dict(config))  # an equal config, another dict
    assert list(testing._scorers.values()) == [first]  # reused: its workers started once
    assert_svg_score(CAREFUL, min=0, config={**STRUCTURAL, "render": {"size": 300}})
    assert len(testing._scorers) == 2  # a different config gets its own
    for scorer in testing._scorers.values():
        scorer.close()
