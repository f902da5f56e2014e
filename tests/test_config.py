"""The one config loader and stage 4 (combine)."""

import pytest

from scorer import ConfigError, load_config
from scorer.combine import combine
from scorer.config import packaged_configs
from scorer.measure.bind import bind
from scorer.record import Component

from .conftest import REPO


def test_the_built_in_default_is_the_packaged_default_yaml():
    packaged = REPO / "scorer" / "configs" / "default.yaml"
    assert load_config(None).model_dump() == load_config("default").model_dump() == load_config(packaged).model_dump()
    assert load_config(None).name == "default"


def test_every_packaged_config_loads_by_name_and_binds():
    names = packaged_configs()
    assert {"default", "structural"} <= set(names)
    assert all(names.values()), "each packaged config starts with a one-line description"
    for name in names:
        config = load_config(name)
        assert config.name == name
        bind(config)  # every measure it names exists and its params are valid


def test_an_unknown_packaged_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="no packaged config named 'nope'.*structural"):
        load_config("nope")


def test_config_hash_ignores_formatting_but_not_values(tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text("clip:\n  weight: 0.5   # same as default\n")
    assert load_config(a).sha256() == load_config(None).sha256()
    b = tmp_path / "b.yaml"
    b.write_text("clip:\n  weight: 0.4\n")
    assert load_config(b).sha256() != load_config(None).sha256()


def test_the_clip_section_of_older_configs_is_the_clip_measure(tmp_path):
    old = load_config({"clip": {"enabled": True, "weight": 0.3, "batch_size": 4}})
    assert old.checks["clip"].weight == 0.3
    assert old.checks["clip"].params["batch_size"] == 4
    assert old.checks["clip"].params["model"] == "ViT-B-32"  # the rest of the default entry is kept
    assert "clip" not in load_config({"clip": {"enabled": False}}).checks


def test_relative_weights_path_is_resolved_against_the_config_file(tmp_path):
    config = tmp_path / "sub" / "c.yaml"
    config.parent.mkdir()
    config.write_text("clip:\n  weights: ckpt/model.bin\n")
    assert bind(load_config(config)).measures["clip"].params.weights == str(tmp_path / "sub" / "ckpt" / "model.bin")


def test_bound_hash_covers_defaults_and_resolved_paths(tmp_path):
    explicit = load_config({"checks": {"element_count": {"weight": 1, "params": {"full_at": 30}}}})
    implicit = load_config({"checks": {"element_count": {"weight": 1}}})
    assert explicit.sha256() != implicit.sha256()  # as written they differ...
    assert bind(explicit).sha256 == bind(implicit).sha256  # ...but they score the same


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
        bind(load_config(raw))  # the shape when loading; measure names and params when binding


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
