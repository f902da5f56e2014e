"""The one config loader and stage 4 (combine)."""

import pytest

from scorer import ConfigError, load_config
from scorer.combine import combine
from scorer.config import Config
from scorer.record import Component

from .conftest import REPO


def test_documented_default_yaml_equals_the_built_in_defaults():
    assert load_config(REPO / "configs" / "default.yaml") == Config()


def test_every_shipped_config_loads():
    # configs/*.yaml are scoring configs; configs/generate/ holds `svgscore generate`'s files.
    shipped = sorted((REPO / "configs").glob("*.yaml"))
    assert {p.name for p in shipped} >= {"default.yaml", "structural.yaml"}
    for path in shipped:
        load_config(path)


def test_config_hash_ignores_formatting_but_not_values(tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text("clip:\n  weight: 0.5   # same as default\n")
    assert load_config(a).sha256() == Config().sha256()
    b = tmp_path / "b.yaml"
    b.write_text("clip:\n  weight: 0.4\n")
    assert load_config(b).sha256() != Config().sha256()


def test_relative_weights_path_is_resolved_against_the_config_file(tmp_path):
    config = tmp_path / "sub" / "c.yaml"
    config.parent.mkdir()
    config.write_text("clip:\n  weights: ckpt/model.bin\n")
    assert load_config(config).clip.weights == str(tmp_path / "sub" / "ckpt" / "model.bin")


@pytest.mark.parametrize(
    "raw",
    [
        {"checks": {"nope": {}}},
        {"limits": {"max_bytes": 0}},
        {"checks": {"not_blank": {"gate": 1.5}}},
        {"checks": {"bicycle_present": {"params": {"wheels": 3}}}},
        {"clip": {"templates": ["no slot here"]}},
        {"clip": {"enabled": False}, "checks": {"parses": {"weight": 0}}},
        {"extra": 1},
    ],
)
def test_invalid_configs_raise_config_error(raw):
    with pytest.raises(ConfigError):
        load_config(raw)


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def c(value, weight):
    return Component(value, weight, "test")


def test_combine_is_a_weighted_mean_scaled_to_100():
    score, summary = combine({"a": c(1.0, 3), "b": c(0.0, 1)}, {})
    assert score == 75.0 and "2 components" in summary


def test_combine_renormalises_when_a_component_is_not_counted():
    score, summary = combine({"clip": c(None, 0.5), "a": c(0.8, 0.25), "b": c(0.4, 0.25)}, {})
    assert score == pytest.approx(60.0)
    assert "clip not counted" in summary


def test_a_closed_gate_scores_zero_and_says_which():
    score, summary = combine({"a": c(1.0, 1), "not_blank": c(0.1, 0)}, {"not_blank": 0.25})
    assert score == 0 and "not_blank" in summary


def test_gates_on_uncounted_components_stay_open():
    score, _ = combine({"a": c(1.0, 1), "bicycle_present": c(None, 1)}, {"bicycle_present": 0.5})
    assert score == 100.0


def test_nothing_measurable_gives_no_score():
    assert combine({"clip": c(None, 1)}, {})[0] is None
