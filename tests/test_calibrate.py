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
