"""CLIP similarity: loading, calibration, determinism, the unavailable path and the weight precedence.

Every model here is the tiny random-weight one from :mod:`tiny_clip`, loaded from a local
checkpoint through the same config keys a user writes. Nothing downloads: HF_HUB_OFFLINE is
set before anything can import huggingface_hub, so a pretrained *tag* fails at once instead
of spending ~45 s on a network that is not there.
"""

from __future__ import annotations

import os
import sys

os.environ["HF_HUB_OFFLINE"] = "1"
if "huggingface_hub.constants" in sys.modules:  # imported earlier in this session: the env var was read then
    sys.modules["huggingface_hub.constants"].HF_HUB_OFFLINE = True

import hashlib  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402

from scorer import DEFAULT_PROMPT, MeasureUnavailableError, Scorer, load_config  # noqa: E402
from scorer.measure.clip import WEIGHTS_ENV, ClipParams  # noqa: E402
from scorer.measure.registry import load_measures  # noqa: E402

try:
    from tiny_clip import TinyClip, build_tiny_clip
except ImportError:  # tests/ imported as a package
    from tests.tiny_clip import TinyClip, build_tiny_clip

REPO = Path(__file__).resolve().parents[1]
LADDER = REPO / "fixtures" / "ladder"
BROKEN = REPO / "fixtures" / "broken"
PELICAN = LADDER / "05_crude_pelican_on_bicycle.svg"
BLANK = LADDER / "01_blank.svg"
OTHER_PROMPT = "a turtle wearing roller skates"
SVGSCORE = Path(sys.executable).with_name("svgscore")


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _no_weights_from_the_environment():
    """A SVGSCORE_CLIP_WEIGHTS in the caller's shell would override every config below."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(WEIGHTS_ENV, raising=False)
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> TinyClip:
    pytest.importorskip("open_clip")
    return build_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture(scope="session")
def missing_weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("no_weights") / "missing.pt"
    assert not path.exists()
    return path


@pytest.fixture(scope="module")
def tiny_scorer(tiny):
    with Scorer({"clip": tiny.clip_section()}, jobs=1) as scorer:
        yield scorer


@pytest.fixture(scope="module")
def pelican(tiny_scorer):
    """The crude pelican scored with the tiny model and the default calibration (0.15 → 0.35)."""
    result = tiny_scorer.score_file(PELICAN)
    assert result.ok, result.summary
    return result


@pytest.fixture(scope="module")
def unavailable_scorer(missing_weights):
    with Scorer({"clip": {"weights": str(missing_weights)}}, jobs=1) as scorer:
        yield scorer


def score_once(config, path=PELICAN, prompt=DEFAULT_PROMPT, **kwargs):
    with Scorer(config, jobs=1, **kwargs) as scorer:
        result = scorer.score_file(path, prompt)
    assert result.ok, result.summary
    return result


def calibrated(cos: float, low: float, high: float) -> float:
    """The documented mapping: low or less → 0, high or more → 1, linear between."""
    return min(1.0, max(0.0, (cos - low) / (high - low)))


def rounding_tolerance(low: float, high: float) -> float:
    """Both value and cosine are reported to 6 decimals; allow exactly what that can cost."""
    return 0.5e-6 + 0.5e-6 / (high - low) + 1e-12


def weighted_mean(components, skip=()) -> tuple[float, float]:
    """(100 · Σ w·v / Σ w, Σ w) over the components that count."""
    counted = [(c.weight, c.value) for n, c in components.items() if n not in skip and c.value is not None and c.weight > 0]
    total = sum(w for w, _ in counted)
    return 100.0 * sum(w * v for w, v in counted) / total, total


def no_gate_closed(result, scorer_config) -> bool:
    for name, check in scorer_config.checks.items():
        component = result.components.get(name)
        if check.gate is not None and component is not None and component.value is not None and component.value < check.gate:
            return False
    return True


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    assert SVGSCORE.exists(), f"no svgscore script next to {sys.executable}"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop(WEIGHTS_ENV, None)
    return subprocess.run([str(SVGSCORE), *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


# -- 1. a loaded model: value, cosine and calibration ------------------------------------------


def test_tiny_model_loads_through_the_config(tiny, pelican):
    info = pelican.provenance.measures["clip"]
    assert info["available"] is True and "reason" not in info
    assert info["model"] == tiny.name
    assert info["pretrained"] == str(tiny.checkpoint)
    assert info["checkpoint_sha256"] == hashlib.sha256(tiny.checkpoint.read_bytes()).hexdigest()
    assert info["precision"] == "fp32"


def test_clip_component_carries_its_cosine_and_weight(pelican):
    clip = pelican.components["clip"]
    assert clip.value is not None  # the value's mapping from the cosine is checked below
    assert clip.weight == load_config(None).checks["clip"].weight
    cosine = clip.details["cosine"]
    assert isinstance(cosine, float)
    assert -1.0 <= cosine <= 1.0
    assert f"{cosine:.4f}" in clip.explanation


def test_default_calibration_mapping(pelican):
    calibration = ClipParams().calibration
    clip = pelican.components["clip"]
    expected = calibrated(clip.details["cosine"], calibration.low, calibration.high)
    assert clip.value == pytest.approx(expected, abs=rounding_tolerance(calibration.low, calibration.high))


def test_clip_is_counted_in_the_total(tiny_scorer, pelican):
    assert no_gate_closed(pelican, tiny_scorer.config)
    expected, _ = weighted_mean(pelican.components)
    assert pelican.score == pytest.approx(expected, abs=1e-4)
    assert "not counted" not in pelican.summary


def test_cosine_matches_an_independent_computation(tiny, tiny_scorer, pelican):
    """Recompute the cosine with open_clip directly, from the same render, padded to a square on white."""
    import open_clip
    import torch
    from PIL import Image

    from scorer.pipeline import FileTask, make_analyzer

    image = make_analyzer(tiny_scorer.config)(FileTask(PELICAN.read_bytes(), DEFAULT_PROMPT)).image
    height, width = image.shape[:2]
    assert height != width  # 400×300 drawing: the padding is exercised
    side = max(height, width)
    square = Image.new("RGB", (side, side), "white")
    square.paste(Image.fromarray(image), ((side - width) // 2, (side - height) // 2))

    model, _, preprocess = open_clip.create_model_and_transforms(tiny.name, pretrained=str(tiny.checkpoint))
    model.eval()
    tokenizer = open_clip.get_tokenizer(tiny.name)
    templates = tiny_scorer.plan.measures["clip"].params.templates
    with torch.no_grad():
        text = model.encode_text(tokenizer([t.format(prompt=DEFAULT_PROMPT) for t in templates])).float()
        picture = model.encode_image(preprocess(square).unsqueeze(0)).float()[0]
    text = torch.nn.functional.normalize(text, dim=-1).mean(dim=0)
    cosine = float(torch.nn.functional.normalize(picture, dim=0) @ torch.nn.functional.normalize(text, dim=0))

    assert pelican.components["clip"].details["cosine"] == pytest.approx(cosine, abs=1e-6)


def test_calibration_in_the_config_changes_the_value(tiny, pelican):
    cosine = pelican.components["clip"].details["cosine"]
    assert -0.9 < cosine < 0.9  # room for the calibrations below

    def value_with(low: float, high: float) -> float:
        result = score_once({"clip": tiny.clip_section(calibration={"low": low, "high": high})})
        assert result.components["clip"].details["cosine"] == cosine  # calibration changes only the mapping
        return result.components["clip"].value

    # The whole range: the value is strictly inside (0, 1), so the linear part is tested.
    wide = value_with(-1.0, 1.0)
    assert 0.0 < wide < 1.0
    assert wide == pytest.approx((cosine + 1.0) / 2.0, abs=rounding_tolerance(-1.0, 1.0))
    # The cosine below `low` clamps to 0, above `high` to 1.
    assert value_with(cosine + 0.05, cosine + 0.1) == 0.0
    assert value_with(cosine - 0.1, cosine - 0.05) == 1.0


# -- 2. determinism --------------------------------------------------------------------------


def test_two_scorers_give_bit_identical_results(tiny, pelican):
    again = score_once({"clip": tiny.clip_section()})
    assert again.components["clip"].details["cosine"] == pelican.components["clip"].details["cosine"]
    assert again.to_dict() == pelican.to_dict()


def test_cosine_depends_on_the_prompt_and_the_drawing(tiny_scorer, pelican):
    cosine = pelican.components["clip"].details["cosine"]
    other_prompt = tiny_scorer.score_file(PELICAN, OTHER_PROMPT)
    other_image = tiny_scorer.score_file(BLANK)
    assert other_prompt.render.sha256 == pelican.render.sha256
    assert other_prompt.components["clip"].details["cosine"] != cosine
    assert other_image.components["clip"].details["cosine"] != cosine


# -- 3. unavailable: not counted, the other weights renormalised ------------------------------


def test_missing_weights_make_clip_unavailable_not_zero(unavailable_scorer, missing_weights):
    result = unavailable_scorer.score_file(PELICAN)
    assert result.ok
    info = result.provenance.measures["clip"]
    assert info["available"] is False
    assert "weights file not found" in info["reason"]
    assert str(missing_weights) in info["reason"]

    clip = result.components["clip"]
    assert clip.value is None
    assert clip.weight > 0
    assert "unavailable" in clip.explanation

    assert no_gate_closed(result, unavailable_scorer.config)
    expected, others = weighted_mean(result.components)
    assert result.score == pytest.approx(expected, abs=1e-4)
    assert "clip not counted" in result.summary
    # Counting CLIP as 0 would dilute the score by the CLIP weight: it must not.
    as_zero = expected * others / (others + clip.weight)
    assert expected > 0
    assert abs(result.score - as_zero) > 1.0


def test_structural_components_do_not_depend_on_clip(unavailable_scorer, pelican):
    without = unavailable_scorer.score_file(PELICAN)
    assert without.render == pelican.render
    for name, component in without.components.items():
        if name != "clip":
            assert component == pelican.components[name]


def test_unknown_model_is_unavailable_with_the_reason(tiny):
    scorer = Scorer({"clip": tiny.clip_section(model="no-such-model", model_config_file=None)}, jobs=1)
    info = scorer.provenance.measures["clip"]
    scorer.close()
    assert info["available"] is False
    assert "cannot load no-such-model" in info["reason"]


def test_corrupt_checkpoint_is_unavailable_with_the_reason(tiny, tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"this is not a checkpoint")
    scorer = Scorer({"clip": tiny.clip_section(weights=str(corrupt))}, jobs=1)
    info = scorer.provenance.measures["clip"]
    scorer.close()
    assert info["available"] is False
    assert f"cannot load {tiny.name} / {corrupt}" in info["reason"]


def test_invalid_model_config_file_is_reported_not_raised(tiny, tmp_path, monkeypatch):
    import open_clip.factory

    # open_clip keeps every path it was given and rereads them all on each add_model_config:
    # keep the bad file out of the registry the rest of the session uses.
    monkeypatch.setattr(open_clip.factory, "_MODEL_CONFIG_PATHS", list(open_clip.factory._MODEL_CONFIG_PATHS))
    monkeypatch.setattr(open_clip.factory, "_MODEL_CONFIGS", dict(open_clip.factory._MODEL_CONFIGS))
    bad = tmp_path / "broken-model.json"
    bad.write_text("{not json", encoding="utf-8")
    with Scorer({"clip": tiny.clip_section(model="broken-model", model_config_file=str(bad))}, jobs=1) as scorer:
        info = scorer.provenance.measures["clip"]
    assert info["available"] is False
    assert "is not JSON" in info["reason"] and str(bad) in info["reason"]
    # Nothing was registered, so later loads in this process are unaffected.
    assert str(bad) not in map(str, open_clip.factory._MODEL_CONFIG_PATHS)


def test_misnamed_model_config_file_is_reported(tiny):
    with Scorer({"clip": tiny.clip_section(model="other-name")}, jobs=1) as scorer:
        info = scorer.provenance.measures["clip"]
    assert info["available"] is False and "must be named other-name.json" in info["reason"]


# -- 4. clip.required ------------------------------------------------------------------------


def test_required_clip_that_cannot_load_raises(missing_weights):
    with Scorer({"clip": {"required": True, "weights": str(missing_weights)}}, jobs=1) as scorer:
        with pytest.raises(MeasureUnavailableError, match="measure 'clip' is required by the config but unavailable: weights file not found"):
            scorer.score_file(PELICAN)


def test_required_clip_keeps_raising_after_the_first_failure(missing_weights):
    """A caller that catches the error for one file must not get CLIP-less scores for the next."""
    with Scorer({"clip": {"required": True, "weights": str(missing_weights)}}, jobs=1) as scorer:
        with pytest.raises(MeasureUnavailableError):
            scorer.score_file(PELICAN)
        with pytest.raises(MeasureUnavailableError):
            scorer.score_file(PELICAN)


def test_cli_exits_2_when_required_clip_is_unavailable(tmp_path, missing_weights):
    config = tmp_path / "required.yaml"
    config.write_text(yaml.safe_dump({"clip": {"required": True, "weights": str(missing_weights)}}))
    run = run_cli("score", str(PELICAN.relative_to(REPO)), "--config", str(config), "--format", "json")
    assert run.returncode == 2, run.stderr
    assert "measure 'clip' is required" in run.stderr
    assert "weights file not found" in run.stderr
    assert run.stdout == ""


# -- 5. --clip-weights on the command line ---------------------------------------------------


def test_cli_clip_weights_with_a_model_config(tiny, tmp_path, pelican):
    config = tmp_path / "tiny.yaml"
    # Relative to the YAML's folder, not to the working directory (the repository).
    relative = os.path.relpath(tiny.config_file, tmp_path)
    config.write_text(yaml.safe_dump({"clip": {"model": tiny.name, "model_config_file": relative, "precision": "fp32"}}))
    run = run_cli(
        "score", "fixtures/ladder", "fixtures/broken", "--config", str(config),
        "--clip-weights", str(tiny.checkpoint), "--format", "json", "--jobs", "1",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert f"clip: {tiny.name} / {tiny.checkpoint}: loaded on cpu" in run.stderr

    records = json.loads(run.stdout)
    expected_files = sorted(LADDER.glob("*.svg")) + sorted(BROKEN.glob("*.svg"))
    assert [Path(r["path"]).name for r in records] == [p.name for p in expected_files]
    ok = [r for r in records if r["status"] == "ok"]
    assert len(ok) == len(list(LADDER.glob("*.svg")))
    assert any(r["status"] == "error" for r in records)
    for record in records:
        assert record["provenance"]["measures"]["clip"]["available"] is True
        assert record["provenance"]["measures"]["clip"]["pretrained"] == str(tiny.checkpoint)
    for record in ok:
        clip = record["components"]["clip"]
        assert clip["value"] is not None and 0.0 <= clip["value"] <= 1.0
        assert -1.0 <= clip["details"]["cosine"] <= 1.0

    # A fresh process with the same checkpoint computes the same cosine as this one.
    cli_pelican = next(r for r in records if Path(r["path"]).name == PELICAN.name)
    assert cli_pelican["components"]["clip"] == {
        "value": pelican.components["clip"].value,
        "weight": pelican.components["clip"].weight,
        "explanation": pelican.components["clip"].explanation,
        "details": pelican.components["clip"].details,
    }


# -- 6. where the weights come from ----------------------------------------------------------


def test_weights_precedence_explicit_then_env_then_config(monkeypatch, tmp_path):
    clip = load_measures()["clip"]

    def weights(raw, overrides=None):
        return clip.parse_params(raw, base_dir=tmp_path, overrides=overrides).weights

    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    assert weights({"weights": "config.pt"}) == str(tmp_path / "config.pt")  # relative to the config's folder
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "env.pt"))
    assert weights({"weights": "config.pt"}) == str(tmp_path / "env.pt")
    assert weights({"weights": "config.pt"}, {"weights": str(tmp_path / "explicit.pt")}) == str(tmp_path / "explicit.pt")
    monkeypatch.setenv(WEIGHTS_ENV, "")
    assert weights({"weights": "config.pt"}) == str(tmp_path / "config.pt")
    assert weights({}) is None
    monkeypatch.setenv("HOME", str(tmp_path))
    assert weights({"weights": "~/w.pt"}) == str(tmp_path / "w.pt")


def test_env_weights_are_used_when_none_are_given(tiny, monkeypatch):
    section = tiny.clip_section(weights=None)  # only the default pretrained tag, which the tiny model lacks
    without = Scorer({"clip": section}, jobs=1)
    assert without.provenance.measures["clip"]["available"] is False
    without.close()

    monkeypatch.setenv(WEIGHTS_ENV, str(tiny.checkpoint))
    scorer = Scorer({"clip": section}, jobs=1)
    info = scorer.provenance.measures["clip"]
    scorer.close()
    assert info["available"] is True
    assert info["pretrained"] == str(tiny.checkpoint)


def test_env_beats_config_and_explicit_beats_env(tiny, monkeypatch, missing_weights):
    monkeypatch.setenv(WEIGHTS_ENV, str(missing_weights))
    env_over_config = Scorer({"clip": tiny.clip_section()}, jobs=1)
    info = env_over_config.provenance.measures["clip"]
    env_over_config.close()
    assert info["available"] is False
    assert str(missing_weights) in info["reason"]

    explicit = Scorer({"clip": tiny.clip_section(weights=None)}, params={"clip": {"weights": str(tiny.checkpoint)}}, jobs=1)
    info = explicit.provenance.measures["clip"]
    explicit.close()
    assert info["available"] is True
    assert info["pretrained"] == str(tiny.checkpoint)


# -- 7. CLIP disabled: torch is never imported -----------------------------------------------


def test_disabled_clip_never_imports_torch():
    """Nor, in the scoring process, what only the workers need: the image libraries the checks
    use (~0.2 s of start-up) and the judges' HTTP client."""
    code = (
        "import sys\n"
        "from scorer import Scorer\n"
        "s = Scorer({'clip': {'enabled': False}})\n"
        f"r = s.score_file({str(PELICAN.relative_to(REPO))!r})\n"
        "s.close()\n"
        "assert r.ok, r.summary\n"
        "assert 'clip' not in r.components, r.components\n"
        "assert r.provenance.measures.get('clip') is None, r.provenance\n"
        "assert r.components['shading'].value is not None, r.components\n"
        "print(sorted(m for m in ('torch', 'open_clip', 'scipy.ndimage', 'skimage', 'httpx') if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_a_checkpoint_replaced_at_the_same_path_is_not_served_from_the_cache(tmp_path):
    """The config names the weights by path; the cache must also see that the file changed."""
    first = build_tiny_clip(tmp_path / "model", seed=0)
    params = {"clip": first.clip_section()}
    with Scorer("default", params=params, cache=tmp_path / "cache") as scorer:
        before = scorer.score_file(LADDER / "05_crude_pelican_on_bicycle.svg")
    second = build_tiny_clip(tmp_path / "model", seed=1)  # retrained, saved over the same file
    assert second.checkpoint == first.checkpoint
    with Scorer("default", params=params, cache=tmp_path / "cache") as scorer:
        after = scorer.score_file(LADDER / "05_crude_pelican_on_bicycle.svg")
    assert after.components["clip"].details["cosine"] != before.components["clip"].details["cosine"]
    assert after.provenance.measures["clip"]["checkpoint_sha256"] != before.provenance.measures["clip"]["checkpoint_sha256"]
