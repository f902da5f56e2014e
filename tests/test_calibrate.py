"""``svgscore calibrate``: deterministic, and the config it writes loads, scores and re-validates
to the figure it reported. Synthetic votes over fixtures/ (no ../shared needed)."""

from __future__ import annotations

import csv
import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from scorer.cli import main
from scorer.config import load_config
from scorer.validate.calibrate import by_prompt, fit_weights, prompt_folds
from scorer.validate.stats import agreement

from .conftest import LADDER

# Three prompts, so there are prompts to hold out; the ladder's order is the voters' taste,
# except on the last prompt, where they prefer the simpler drawing (votes are noisy).
PROMPTS = ("a pelican riding a bicycle", "a pelican on a bike", "a bird riding a bicycle")
CONFIG = {
    "checks": {
        "not_blank": {"weight": 0.1, "gate": 0.25},
        "element_count": {"weight": 0.2},
        "closed_paths": {"weight": 0.2},
        "detail": {"weight": 0.2},
        "shading": {"weight": 0.2},
        "layering": {"weight": 0.1},
    }
}


@pytest.fixture(scope="module")
def votes(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("votes")
    rungs = [p for p in LADDER if p.name != "01_blank.svg"]
    path = folder / "votes.csv"
    with path.open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["a", "b", "winner", "prompt"])
        for number, prompt in enumerate(PROMPTS):
            for lower, higher in combinations(rungs, 2):
                winner = "a" if number < 2 or "05b" not in higher.name else "b"
                writer.writerow([str(higher), str(lower), winner, prompt])
    return path


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    import yaml

    path = tmp_path_factory.mktemp("config") / "base.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


def calibrate(votes: Path, base: Path, output: Path) -> dict:
    result = CliRunner().invoke(
        main, ["calibrate", str(votes), "--config", str(base), "-o", str(output), "--folds", "3", "--format", "json", "-j", "1", "--no-cache"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture(scope="module")
def calibrated(votes, base, tmp_path_factory) -> tuple[dict, Path]:
    output = tmp_path_factory.mktemp("out") / "tuned.yaml"
    return calibrate(votes, base, output), output


def test_calibrate_is_deterministic(votes, base, calibrated, tmp_path):
    report, first = calibrated
    again = calibrate(votes, base, tmp_path / "tuned.yaml")
    assert again == {**report, "output": again["output"]}
    assert (tmp_path / "tuned.yaml").read_text() == first.read_text()


def test_written_config_loads_scores_and_revalidates_to_the_reported_figure(votes, calibrated):
    report, written = calibrated
    config = load_config(written)
    fitted = report["weights"]
    assert fitted and all(w >= 0 for w in fitted.values())
    assert {name: config.checks[name].weight for name in fitted} == fitted
    assert config.checks["not_blank"].gate == 0.25  # gates and unfitted settings are the base's
    text = written.read_text()
    assert "sha256" in text and "Prompt-cross-validated agreement" in text and "Folds: 3 by prompt" in text
    result = CliRunner().invoke(main, ["validate", str(votes), "--config", str(written), "--format", "json", "-j", "1", "--no-cache"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output)["labels"][0]["figures"][0]["agreement"]
    reported = report["rows"]["calibrated, on the votes it was fitted on"]
    assert found["value"] == pytest.approx(reported["value"])
    assert found["decided"] == reported["decided"]


def test_report_has_cross_validated_base_and_trivial_figures(calibrated):
    rows = calibrated[0]["rows"]
    assert set(rows) >= {"calibrated, prompt-cross-validated", "more XML elements wins", "larger file wins"}
    for figure in rows.values():
        assert figure["value"] is None or figure["ci95"][0] <= figure["value"] <= figure["ci95"][1]


def test_every_prompt_is_held_out_once():
    prompts = [f"prompt {i}" for i in range(7)]
    folds = prompt_folds(prompts * 3, 3, seed=0)
    assert sorted(p for fold in folds for p in fold) == sorted(prompts)
    assert len(folds) == 3 and prompt_folds(prompts, 3, seed=0) == folds


def test_weights_are_non_negative_and_shrink_to_the_base():
    rng = np.random.default_rng(0)
    differences = rng.normal(size=(200, 3))
    a_won = differences @ np.array([2.0, -1.0, 0.0]) + rng.normal(size=200) > 0
    base = np.array([0.5, 0.1, 0.4])  # a base the votes partly agree with
    free = fit_weights(differences, a_won, 0.0, base)
    assert (free >= 0).all() and free[1] == 0.0  # a component pointing the wrong way gets 0, not a negative weight
    shrunk = fit_weights(differences, a_won, 1e6, base)
    np.testing.assert_allclose(shrunk / shrunk.sum(), base, atol=1e-3)


def _votes_on(prompts: dict[str, int]) -> list:
    """``count`` votes per prompt, the left file always the one people picked."""
    return [((f"{prompt}/a{i}.svg", prompt), (f"{prompt}/b{i}.svg", prompt), "a") for prompt, count in prompts.items() for i in range(count)]


def test_by_prompt_counts_prompts_not_votes():
    # The judge is right on every vote of one big prompt and wrong on every vote of two small
    # ones: it agrees on most votes but is better than the baseline on one prompt of three.
    decided = _votes_on({"big": 30, "small 1": 5, "small 2": 5})
    judge = {(a, b): (1.0, 0.0) if a[1] == "big" else (0.0, 1.0) for a, b, _ in decided}
    baseline = {(a, b): (1.0, 0.0) if i % 2 else (0.0, 1.0) for i, (a, b, _) in enumerate(decided)}  # every other vote right
    found = by_prompt(decided, judge, baseline)
    assert (found.won, found.tied, found.lost) == (1, 0, 2)
    assert found.difference == pytest.approx(30 / 40 - 20 / 40)
    # The lead rests on one prompt: resampling prompts puts no-lead draws inside the interval,
    # where resampling votes (as if independent) would not.
    assert found.difference_low < 0 < found.difference_high
    votes_only = agreement([(w, *judge[(a, b)]) for a, b, w in decided])
    assert found.high - found.low > votes_only.high - votes_only.low
    assert found == by_prompt(decided, judge, baseline)  # seeded


def test_by_prompt_leaves_out_what_a_judge_cannot_decide():
    decided = _votes_on({"p": 4, "q": 4})
    judge = {(a, b): (1.0, 0.0) if a[1] == "p" else (0.5, 0.5) for a, b, _ in decided}  # ties on every vote of q
    baseline = {(a, b): (0.0, 1.0) for a, b, _ in decided}
    found = by_prompt(decided, judge, baseline)
    assert (found.won, found.tied, found.lost) == (1, 0, 0)  # q: the judge decided nothing there, so it is not compared
    assert found.difference == pytest.approx(1.0)
    assert found.low == found.high == 1.0


def test_report_has_prompt_bootstrap_and_prompt_wins(calibrated):
    report = calibrated[0]
    for name, found in report["by_prompt"].items():
        value = report["rows"][name]["value"]
        assert found["ci95"][0] <= value <= found["ci95"][1]
        for baseline, versus in found["versus"].items():
            assert versus["difference"] == pytest.approx(value - report["rows"][baseline]["value"])
            assert versus["ci95"][0] <= versus["difference"] <= versus["ci95"][1]
            assert sum(versus["prompts"].values()) <= report["prompts"]


# -- --prior: what each fit shrinks towards ------------------------------------------------------

# Far from the base's ratios, so a fit that shrank towards the base could not land near it; still
# pointing the votes' way overall (a prior the votes contradict scales to nothing).
PRIOR = {
    "checks": {
        "not_blank": {"weight": 0.1},
        "element_count": {"weight": 0.4},
        "closed_paths": {"weight": 0.02},
        "detail": {"weight": 0.4},
        "shading": {"weight": 0.02},
        "layering": {"weight": 0.06},
        "display_size": {"weight": 0.0, "gate": 0.5},  # not weighed by the base: never fitted
    }
}


@pytest.fixture(scope="module")
def prior(tmp_path_factory) -> Path:
    import yaml

    path = tmp_path_factory.mktemp("prior") / "prior.yaml"
    path.write_text("# chosen without the votes\n" + yaml.safe_dump(PRIOR))
    return path


def run(votes: Path, config: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["calibrate", str(votes), "--config", str(config), "--folds", "3", "-j", "1", "--no-cache", *extra])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def from_prior(votes, base, prior, tmp_path_factory) -> tuple[dict, Path]:
    output = tmp_path_factory.mktemp("out") / "tuned.yaml"
    code, text = run(votes, base, "--prior", str(prior), "-o", str(output), "--format", "json")
    assert code == 0, text
    return json.loads(text), output


def _ratios(weights: dict[str, float]) -> dict[str, float]:
    total = sum(weights.values())
    return {name: w / total for name, w in weights.items()}


def test_prior_is_what_the_fit_shrinks_towards(votes, base, prior, calibrated):
    # With a penalty that swamps the votes the fit is its target: the prior's ratios with --prior,
    # the base's without. Which components are fitted, and their total, stay the base's.
    code, text = run(votes, base, "--prior", str(prior), "--l2", "1e6", "--format", "json")
    assert code == 0, text
    fitted = json.loads(text)["weights"]
    code, text = run(votes, base, "--l2", "1e6", "--format", "json")
    assert code == 0, text
    own = json.loads(text)["weights"]
    assert set(fitted) == set(own) == set(calibrated[0]["weights"]) and len(fitted) >= 2
    assert "display_size" not in fitted
    target = _ratios({name: PRIOR["checks"][name]["weight"] for name in fitted})
    assert _ratios(fitted) == pytest.approx(target, abs=2e-3)
    assert _ratios(own) == pytest.approx(_ratios({name: CONFIG["checks"][name]["weight"] for name in own}), abs=2e-3)
    assert sum(fitted.values()) == pytest.approx(sum(CONFIG["checks"][name]["weight"] for name in fitted), abs=1e-3)


def test_written_config_names_its_prior_and_keeps_the_base(from_prior, prior, calibrated):
    import hashlib

    report, written = from_prior
    sha = hashlib.sha256(prior.read_bytes()).hexdigest()
    assert report["prior"] == {"config": str(prior), "sha256": sha, "given": True, "fitted_on_these_votes": False}
    assert f"# Prior (each fit shrank towards its weights): the config {prior} sha256 {sha}." in written.read_text()
    assert report["weights"] != calibrated[0]["weights"]  # a different target, different weights
    config = load_config(written)
    assert {name: config.checks[name].weight for name in report["weights"]} == report["weights"]
    assert config.checks["not_blank"].gate == 0.25 and "display_size" not in config.checks  # the base's settings, not the prior's
    assert f"prior ({prior}), not fitted" in report["rows"] and f"prior ({prior}), not fitted" in report["by_prompt"]
    # Without --prior the base is its own prior, and the header says so.
    base_text = calibrated[1].read_text()
    assert "# Prior (each fit shrank towards its weights): the config " in base_text and "base.yaml sha256 " in base_text


def test_calibrate_from_a_prior_is_deterministic(votes, base, prior, from_prior, tmp_path):
    report, first = from_prior
    code, text = run(votes, base, "--prior", str(prior), "-o", str(tmp_path / "again.yaml"), "--format", "json")
    assert code == 0, text
    assert json.loads(text) == {**report, "output": str(tmp_path / "again.yaml")}
    assert (tmp_path / "again.yaml").read_text() == first.read_text()


def test_a_config_fitted_from_a_prior_is_that_fit_and_is_called_in_sample(votes, base, prior, from_prior):
    # Only the prior, the components and their total reach the fit: the written config, as the
    # base, refits to itself, and its header (naming these votes' sha256) marks its row in-sample.
    report, written = from_prior
    assert not report["base_is_this_fit"]
    code, text = run(votes, written, "--prior", str(prior), "--format", "json")
    assert code == 0, text
    again = json.loads(text)
    assert again["base_is_this_fit"]
    assert again["weights"] == pytest.approx(report["weights"], abs=5e-4)
    assert f"base config ({written}), in-sample: its weights were chosen on these votes" in again["rows"]
    assert f"base config ({base})" in report["rows"]  # the hand-made base names no votes
    code, text = run(votes, written)  # its own prior: the table says the CV figure is not held out
    assert code == 0, text
    assert f"shrinks towards {written}, whose weights were fitted on these votes" in text


def test_a_prior_without_a_fitted_component_is_refused(votes, base, tmp_path):
    import yaml

    partial = tmp_path / "partial.yaml"
    partial.write_text(yaml.safe_dump({"checks": {"not_blank": {"weight": 1.0}}}))
    code, text = run(votes, base, "--prior", str(partial))
    assert code == 2
    assert "the prior lists no weight for" in text
