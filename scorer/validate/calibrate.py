"""``svgscore calibrate``: fit a config's weights to pairwise votes, and say honestly how well that generalises.

The model is Bradley–Terry on component differences: P(a beats b) = σ(Σ wᵢ (vᵢ(a) − vᵢ(b))),
weights non-negative (a component may only push the way it was designed to) and L2-regularised,
fitted by a deterministic optimiser. Within one prompt every drawing is scored on the same
components, so the weighted mean ``combine`` takes ranks a pair exactly as this sum does.

A figure on the votes the weights were fitted on says nothing about new prompts, so the reported
agreement is cross-validated *by prompt*: prompts are split into folds, the weights are refitted
on the other folds' votes and the held-out prompts' votes are judged with them. That is the
figure of the procedure; the written config is that procedure run on all the votes.

Each fit shrinks towards a *prior* (``--prior``, by default the base config's own weights). A
held-out prompt cannot move its fold's weights, but it may have chosen the prior: the figure is
held out only when the prior's weights were chosen without these votes.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np
import yaml
from lxml import etree
from scipy.optimize import minimize

from .. import __version__
from ..api import Scorer
from ..cliopts import config_option, scorer_kwargs, scorer_options
from ..combine import combine
from ..config import DEFAULT_PROMPT, Config, load_config, packaged_config_text
from ..errors import ConfigError, UsageError
from ..inputs import ScoreItem, read_manifest
from ..record import ScoreResult
from .cli import ItemKey, KeyedVote, Results, load_labels
from .stats import Agreement, Winner, agreement, preference

DEFAULT_L2 = 0.01

Decided = tuple[ItemKey, ItemKey, Winner]  # both files scored without error, winner "a" or "b"
Picks = Mapping[tuple[ItemKey, ItemKey], tuple[float | None, float | None]]  # a judge's values of (a, b) per voted pair
PROMPT_RESAMPLES = 2000
SAME_WEIGHT = 5e-4  # written weights are rounded to 4 decimals: closer than this, a base's weight is the fit's


@dataclasses.dataclass(frozen=True)
class Calibration:
    """What ``calibrate`` found: the weights fitted on all votes and the figures that judge them."""

    weights: dict[str, float]  # fitted components only, on the base config's scale
    cross_validated: Agreement  # the procedure, on held-out prompts
    base: Agreement  # the base config on the same votes
    prior: Agreement  # the prior's weights, not fitted, on the same votes
    prior_weights: dict[str, float]  # the prior's weights of the fitted components, on the base config's scale
    in_sample: Agreement  # the fitted weights on the votes they were fitted on (not a generalisation figure)
    folds: list[list[str]]  # prompts per fold
    held_out: dict[tuple[ItemKey, ItemKey], tuple[float | None, float | None]]  # each vote's held-out scores


def decided_votes(votes: Sequence[KeyedVote], results: Results) -> list[Decided]:
    """Votes a judge can be held to: both files scored without error and the voter picked a side."""
    return [
        (a, b, w) for a, b, w in votes
        if w != "tie" and a in results and b in results and results[a].ok and results[b].ok
    ]


def fittable(decided: Sequence[Decided], results: Results, names: Sequence[str]) -> list[str]:
    """The components the votes can say something about: measured on every voted file and not constant."""
    keys = {key for a, b, _ in decided for key in (a, b)}
    found = []
    for name in names:
        values = [results[key].components[name].value if name in results[key].components else None for key in keys]
        if values and None not in values and max(values) > min(values):  # type: ignore[type-var]
            found.append(name)
    return found


def prompt_folds(prompts: Sequence[str], folds: int | None, seed: int) -> list[list[str]]:
    """Prompts dealt into ``folds`` groups after a seeded shuffle (None: one prompt per fold):
    every prompt held out exactly once."""
    ordered = sorted(set(prompts))
    order = np.random.default_rng(seed).permutation(len(ordered))
    count = len(ordered) if folds is None else max(1, min(folds, len(ordered)))
    return [sorted(ordered[i] for i in order[k::count]) for k in range(count)]


def _logistic(differences: np.ndarray, a_won: np.ndarray, l2: float, prior: np.ndarray) -> np.ndarray:
    """Non-negative logistic weights on (a − b) differences, no intercept (which side is called a is
    arbitrary), L2-penalised towards ``prior``. L-BFGS-B from the prior: deterministic."""
    sign = np.where(a_won, 1.0, -1.0)
    n = max(len(sign), 1)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        margin = sign * (differences @ w)
        off = w - prior
        value = np.logaddexp(0.0, -margin).sum() / n + l2 * float(off @ off)
        gradient = -(differences * (sign / (1.0 + np.exp(margin)))[:, None]).sum(axis=0) / n + 2 * l2 * off
        return value, gradient

    found = minimize(loss, prior, jac=True, method="L-BFGS-B", bounds=[(0.0, None)] * differences.shape[1])
    return np.asarray(found.x)


def fit_weights(differences: np.ndarray, a_won: np.ndarray, l2: float, base: np.ndarray) -> np.ndarray:
    """Bradley–Terry weights that move away from the base config's only as far as the votes carry them.

    Votes are few and noisy, and a free fit on a handful of prompts chases them; shrinking towards
    the base weights (scaled to the votes first: only their ratios are the config's) keeps what the
    votes do not contradict. ``l2`` → ∞ gives the base config back, 0 a free non-negative fit.
    """
    total = float(base.sum())
    direction = base / total if total > 0 else np.full(len(base), 1.0 / len(base))
    scale = _logistic((differences @ direction)[:, None], a_won, 0.0, np.zeros(1))[0]
    return _logistic(differences, a_won, l2, scale * direction)


def _design(decided: Sequence[Decided], results: Results, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    def values(key: ItemKey) -> np.ndarray:
        return np.array([results[key].components[name].value for name in names], dtype=float)

    differences = np.array([values(a) - values(b) for a, b, _ in decided]).reshape(len(decided), len(names))
    return differences, np.array([w == "a" for _, _, w in decided])


def on_base_scale(fitted: np.ndarray, names: Sequence[str], base: Mapping[str, float]) -> dict[str, float]:
    """Fitted weights rescaled to the base config's total for the same components.

    Only ratios matter within a prompt; keeping the total keeps the balance with what was not
    fitted (CLIP, subject checks the votes never applied). All zero: the base weights stay.
    """
    total = sum(base[name] for name in names)
    if fitted.sum() <= 0 or total <= 0:
        return {name: base[name] for name in names}
    return {name: round(float(w) * total / float(fitted.sum()), 4) for name, w in zip(names, fitted, strict=True)}


def rescore(result: ScoreResult, weights: Mapping[str, float], gates: Mapping[str, float]) -> float | None:
    """The total ``result`` gets with some components' weights replaced (no re-scoring needed)."""
    components = {
        name: dataclasses.replace(c, weight=weights[name]) if name in weights else c for name, c in result.components.items()
    }
    return combine(components, gates)[0]


def calibrate(
    decided: Sequence[Decided],
    results: Results,
    base: Mapping[str, float],
    gates: Mapping[str, float],
    *,
    folds: int | None,
    seed: int,
    l2: float,
    prior: Mapping[str, float] | None = None,
) -> Calibration:
    """Cross-validate the fitting procedure by prompt, then fit it on all the votes.

    ``base`` decides which components are fitted and the scale the weights are written on;
    ``prior`` (default: ``base``) is what each fit shrinks towards.
    """
    if not decided:
        raise UsageError("no vote can be used: every vote is a tie, names a missing file or an error row")
    # A weight-0 component is off by the base config's choice (a gate-only check, a measure
    # that misleads): calibrate tunes what the config counts, it does not switch things on.
    names = fittable(decided, results, [name for name, weight in base.items() if weight > 0])
    if not names:
        raise UsageError("no component varies over the voted files: nothing to fit")
    prior = base if prior is None else prior
    missing = [name for name in names if name not in prior]
    if missing:
        raise UsageError(f"the prior lists no weight for {', '.join(missing)}, which the base config fits")
    target = np.array([prior[name] for name in names])
    start = on_base_scale(target, names, base)  # the prior as the config would weigh it, unfitted
    groups = prompt_folds([a[1] for a, _, _ in decided], folds, seed)
    held_out: dict[tuple[ItemKey, ItemKey], tuple[float | None, float | None]] = {}
    for held in groups:
        train = [v for v in decided if v[0][1] not in held]
        test = [v for v in decided if v[0][1] in held]
        weights = on_base_scale(fit_weights(*_design(train, results, names), l2, target), names, base) if train else start
        for a, b, _ in test:
            held_out[(a, b)] = (rescore(results[a], weights, gates), rescore(results[b], weights, gates))
    final = on_base_scale(fit_weights(*_design(decided, results, names), l2, target), names, base)

    def judged(score: Any) -> Agreement:
        return agreement([(w, *score(a, b)) for a, b, w in decided])

    return Calibration(
        weights=final,
        cross_validated=judged(lambda a, b: held_out[(a, b)]),
        base=judged(lambda a, b: (results[a].score, results[b].score)),
        prior=judged(lambda a, b: (rescore(results[a], start, gates), rescore(results[b], start, gates))),
        prior_weights=start,
        in_sample=judged(lambda a, b: (rescore(results[a], final, gates), rescore(results[b], final, gates))),
        folds=groups,
        held_out=held_out,
    )


# -- what a judge is compared against ----------------------------------------------------------


def element_count(path: str) -> int | None:
    """Elements in the file's XML, as written (the trivial judge "more elements wins")."""
    try:
        return sum(1 for el in etree.parse(path, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)).iter() if isinstance(el.tag, str))
    except (etree.XMLSyntaxError, OSError):
        return None


def baseline_picks(decided: Sequence[Decided]) -> dict[str, Picks]:
    """The trivial judges' values per voted pair: more XML elements wins, larger file wins."""
    keys = {key for a, b, _ in decided for key in (a, b)}
    elements = {key: element_count(key[0]) for key in keys}
    sizes = {key: float(Path(key[0]).stat().st_size) for key in keys}
    return {
        "more XML elements wins": {(a, b): (elements[a], elements[b]) for a, b, _ in decided},
        "larger file wins": {(a, b): (sizes[a], sizes[b]) for a, b, _ in decided},
    }


def baselines(decided: Sequence[Decided]) -> dict[str, Agreement]:
    """The trivial judges' agreement on the same votes."""
    return {name: agreement([(w, *picks[(a, b)]) for a, b, w in decided]) for name, picks in baseline_picks(decided).items()}


@dataclasses.dataclass(frozen=True)
class ByPrompt:
    """A judge against a baseline with prompts, not votes, as the unit.

    Votes on one prompt share its files and its difficulty, so they are not independent: a
    vote-level interval is too narrow when a judge's lead comes from a few prompts. Resampling
    whole prompts (with their votes) gives the interval a new set of prompts would see.
    """

    low: float  # prompt-bootstrap 95% interval of the judge's agreement
    high: float
    difference: float  # judge's agreement minus the baseline's, each over the votes it decided
    difference_low: float  # paired prompt-bootstrap 95% interval of that difference
    difference_high: float
    won: int  # prompts where the judge agrees with the votes more often than the baseline
    tied: int
    lost: int


def _hits_by_prompt(decided: Sequence[Decided], picks: Picks, prompts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per prompt: votes the judge got right, votes it decided (a judge tie or a missing value is not decided)."""
    index = {prompt: i for i, prompt in enumerate(prompts)}
    right, counted = np.zeros(len(prompts)), np.zeros(len(prompts))
    for a, b, winner in decided:
        judged = preference(*picks[(a, b)])
        if judged in ("a", "b"):
            counted[index[a[1]]] += 1
            right[index[a[1]]] += judged == winner
    return right, counted


def by_prompt(decided: Sequence[Decided], judge: Picks, baseline: Picks, *, resamples: int = PROMPT_RESAMPLES, seed: int = 0) -> ByPrompt:
    """Prompt-bootstrap interval of ``judge``'s agreement, its paired difference from ``baseline``'s,
    and on how many prompts it does better, as well, or worse. Seeded: the same votes give the same figures."""
    prompts = sorted({a[1] for a, _, _ in decided})
    (right, counted), (base_right, base_counted) = (_hits_by_prompt(decided, picks, prompts) for picks in (judge, baseline))
    draws = np.random.default_rng(seed).integers(0, len(prompts), size=(resamples, len(prompts)))
    with np.errstate(invalid="ignore", divide="ignore"):  # a draw of prompts the judge decided none of: NaN, left out
        rates = right[draws].sum(axis=1) / counted[draws].sum(axis=1)
        differences = rates - base_right[draws].sum(axis=1) / base_counted[draws].sum(axis=1)
        own, theirs = right / counted, base_right / base_counted
        difference = right.sum() / counted.sum() - base_right.sum() / base_counted.sum()
    low, high = np.nanquantile(rates, [0.025, 0.975])
    difference_low, difference_high = np.nanquantile(differences, [0.025, 0.975])
    # A prompt either judge decided no vote of says nothing about which is better there.
    compared = ~(np.isnan(own) | np.isnan(theirs))
    return ByPrompt(
        low=float(low), high=float(high),
        difference=float(difference),
        difference_low=float(difference_low), difference_high=float(difference_high),
        won=int((own > theirs)[compared].sum()), tied=int((own == theirs)[compared].sum()), lost=int((own < theirs)[compared].sum()),
    )


def judge_figures(path: Path, held_out: Picks) -> dict[str, Agreement]:
    """Agreement of each ``judge:<name>`` column of a votes file with its ``winner``, their majority,
    and the calibrated procedure's held-out picks on the same votes."""
    rows = [r for r in csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines()) if r["winner"].strip().lower() in ("a", "b")]
    judges = [column for column in (rows[0] if rows else {}) if column.startswith("judge:")]
    if not judges:
        raise UsageError(f"{path} has no judge:<name> columns")
    figures = {}

    def pick(value: str) -> tuple[float, float] | tuple[None, None]:
        return {"a": (1.0, 0.0), "b": (0.0, 1.0)}.get(value.strip().lower(), (None, None))  # type: ignore[return-value]

    for judge in judges:
        figures[judge.removeprefix("judge:")] = agreement([(r["winner"].strip().lower(), *pick(r[judge])) for r in rows])

    def majority(r: Mapping[str, str]) -> tuple[float, float] | tuple[None, None]:
        votes = [r[j].strip().lower() for j in judges]
        a, b = votes.count("a"), votes.count("b")
        return pick("a" if a > b else "b" if b > a else "")

    figures["majority of the judges"] = agreement([(r["winner"].strip().lower(), *majority(r)) for r in rows])

    def key(r: Mapping[str, str], side: str) -> ItemKey:  # as load_labels resolves a vote row
        return str((path.parent / r[side]).resolve()), r["prompt"]

    pairs = [(r["winner"].strip().lower(), (key(r, "a"), key(r, "b"))) for r in rows if r.get("prompt")]
    figures["calibrated config, held-out prompts"] = agreement([(w, *held_out[pair]) for w, pair in pairs if pair in held_out])
    return figures


# -- output ------------------------------------------------------------------------------------


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _cell(found: Agreement) -> str:
    if math.isnan(found.value):
        return "— (0 votes decided)"
    return f"{found.value:.3f} [{found.low:.3f}, {found.high:.3f}] ({found.used} votes decided)"


def _figure(found: Agreement) -> dict[str, Any]:
    """An agreement as JSON (as ``validate --format json`` writes it)."""
    if math.isnan(found.value):
        return {"value": None, "ci95": [None, None], "decided": 0}
    return {"value": found.value, "ci95": [found.low, found.high], "decided": found.used}


def header(votes: Sequence[Path], base: str, prior: Origin, found: Calibration, *, seed: int, l2: float) -> str:
    """The provenance comment of a written config."""
    lines = [
        f"Calibrated by `svgscore calibrate` (svgscore {__version__}) from the config {base}.",
        "Weights of the components below that the votes could measure were fitted (Bradley–Terry on component",
        f"differences, non-negative, L2 {l2:g}) and rescaled to the base config's total for them; everything else is the base's.",
        f"Prior (each fit shrank towards its weights): the config {prior.name} sha256 {prior.sha256}.",
        "Votes:",
        *[f"  {path} sha256 {sha256_of(path)}" for path in votes],
        f"Folds: {len(found.folds)} by prompt (seed {seed}); each fold's weights fitted on the other folds' prompts.",
        f"Prompt-cross-validated agreement of this procedure: {_cell(found.cross_validated)}.",
        f"Base config on the same votes: {_cell(found.base)}.",
        f"These weights on the votes they were fitted on (optimistic, not a generalisation figure): {_cell(found.in_sample)}.",
        f"Fitted weights: {', '.join(f'{n} {w:g}' for n, w in found.weights.items())}.",
    ]
    return "".join(f"# {line}\n" for line in lines)


def config_text(config: Config) -> str | None:
    """A config's YAML as written (a packaged one from the package, else its file); None for one built in code."""
    if config.name is None:
        return None
    if config.base_dir is None:
        return packaged_config_text(config.name)
    try:
        return Path(config.name).read_bytes().decode("utf-8")  # bytes as they are: its sha256 is the file's
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {config.name}: {exc}") from None


@dataclasses.dataclass(frozen=True)
class Origin:
    """Which config a set of weights came from, and whether it says it was fitted on the votes at hand."""

    name: str
    sha256: str  # of the YAML as written (``sha256sum`` of the file); of the settings for a config built in code
    fitted_on_votes: bool  # its text names a votes file's sha256, as a config written by calibrate does


def origin(config: Config, votes: Sequence[Path]) -> Origin:
    text = config_text(config)
    if text is None:
        return Origin("(built in code)", config.sha256(), False)
    return Origin(str(config.name), hashlib.sha256(text.encode()).hexdigest(), any(sha256_of(path) in text for path in votes))


def base_content(config: Config) -> dict[str, Any]:
    """The base config as written, comments aside."""
    text = config_text(config)
    return config.model_dump(mode="json") if text is None else yaml.safe_load(text) or {}


def tuned_config(raw: Mapping[str, Any], weights: Mapping[str, float]) -> dict[str, Any]:
    """The base config's content with the fitted weights in place."""
    checks = {name: dict(cfg or {}) for name, cfg in (raw.get("checks") or {}).items()}
    for name, weight in weights.items():
        checks[name]["weight"] = weight
    return {**raw, "checks": checks}


def _table(report: dict[str, Any]) -> str:
    lines = [f"{report['votes_used']} votes used ({report['prompts']} prompts, {report['folds']} folds by prompt, seed {report['seed']}, L2 {report['l2']:g})"]
    width = max(len(name) for name in report["rows"])
    lines += [f"  {name:<{width}}  {_cell(Agreement(*_unpack(f)))}" for name, f in report["rows"].items()]
    lines.append(f"  ({_prior_note(report['prior'])})")
    lines.append(f"by prompt ({PROMPT_RESAMPLES} resamples of the {report['prompts']} prompts with their votes: votes on one prompt are not independent):")
    for name, found in report["by_prompt"].items():
        value = report["rows"][name]["value"]
        lines.append(f"  {name}: {_number(value)}, prompt-bootstrap 95% [{_number(found['ci95'][0])}, {_number(found['ci95'][1])}]")
        for baseline, versus in found["versus"].items():
            low, high = versus["ci95"]
            lines.append(
                f"    minus {baseline}: {_signed(versus['difference'])} [{_signed(low)}, {_signed(high)}]; "
                f"better on {versus['prompts']['won']} prompts, as good on {versus['prompts']['tied']}, worse on {versus['prompts']['lost']}"
            )
    lines.append("fitted weights (on all votes; the base config's total for these components): " + ", ".join(f"{n} {w:g}" for n, w in report["weights"].items()))
    if report["base_is_this_fit"]:
        lines.append("  (the base config's own weights: it is this procedure run on these votes, so the cross-validated figure is the one that speaks for it)")
    if report["judges"]:
        lines.append(f"LLM judges ({report['judges_file']}), each on the votes it judged:")
        width = max(len(name) for name in report["judges"])
        lines += [f"  {name:<{width}}  {_cell(Agreement(*_unpack(f)))}" for name, f in report["judges"].items()]
    return "\n".join(lines) + "\n"


def _prior_note(prior: Mapping[str, Any]) -> str:
    # The held-out prompt's votes cannot move the fold's weights, but they may have chosen the
    # weights the fit shrinks towards: then the held-out figure is not held out.
    if prior["fitted_on_these_votes"]:
        return f"each fold's fit shrinks towards {prior['config']}, whose weights were fitted on these votes: the cross-validated figure is not held out"
    if not prior["given"]:
        return (
            "each fold's fit shrinks towards the base config's weights: if those were chosen looking at these votes, so was this figure; "
            "--prior names weights chosen without them"
        )
    return f"each fold's fit shrinks towards --prior {prior['config']}: the figure is held out as far as its weights were chosen without these votes"


def _number(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.3f}"


def _signed(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:+.3f}"


def _prompt_figures(decided: Sequence[Decided], judge: Picks, trivial: Mapping[str, Picks]) -> dict[str, Any]:
    """A judge's prompt-bootstrap interval and its :class:`ByPrompt` against each trivial judge, as JSON
    (NaN, a figure no vote decided, as null)."""

    def clean(value: float) -> float | None:
        return None if math.isnan(value) else value

    found = {name: by_prompt(decided, judge, theirs) for name, theirs in trivial.items()}
    first = next(iter(found.values()))  # the judge's own interval is the same against every baseline (same seeded draws)
    return {
        "ci95": [clean(first.low), clean(first.high)],
        "versus": {
            name: {
                "difference": clean(f.difference),
                "ci95": [clean(f.difference_low), clean(f.difference_high)],
                "prompts": {"won": f.won, "tied": f.tied, "lost": f.lost},
            }
            for name, f in found.items()
        },
    }


def _unpack(figure: Mapping[str, Any]) -> tuple[float, float, float, int, int]:
    value = math.nan if figure["value"] is None else figure["value"]
    low, high = (math.nan if v is None else v for v in figure["ci95"])
    return value, low, high, figure["decided"], 0


@click.command("calibrate")
@click.argument("votes", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the calibrated config here (without it: report only).")
@click.option("--folds", type=click.IntRange(min=2), help="Cross-validation folds, by prompt [default: one prompt per fold].")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the prompt-to-fold shuffle.")
@click.option("--l2", type=click.FloatRange(min=0), default=DEFAULT_L2, show_default=True, help="L2 penalty on the weights (per vote).")
@click.option(
    "--prior",
    metavar="NAME|PATH",
    help="The config whose weights each fit shrinks towards [default: the --config base]. Weights chosen without these "
    "votes make the cross-validated figure a held-out one; the base still decides what is fitted and what -o writes.",
)
@click.option("--judges", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Votes CSV with judge:<name> columns (other judges' picks) to print beside.")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="CSV/JSONL path,prompt for files whose vote rows name no prompt.")
@click.option("--prompt", default=DEFAULT_PROMPT, show_default=True, help="Prompt for files neither a vote row nor the manifest gives one.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@scorer_options
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Worker processes [default: CPU count].")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the result cache.")
def calibrate_command(
    votes: tuple[Path, ...],
    config: str | None,
    output: Path | None,
    folds: int | None,
    seed: int,
    l2: float,
    prior: str | None,
    judges: Path | None,
    manifest: Path | None,
    prompt: str,
    fmt: str,
    clip_weights: str | None,
    device: str | None,
    plugins: tuple[str, ...],
    jobs: int | None,
    no_cache: bool,
) -> None:
    """Fit the weights of a config to pairwise VOTES (CSV a,b,winner[,prompt]) and report how well that generalises.

    Prints agreement cross-validated by prompt (weights refitted without the held-out prompts),
    with the bootstrap interval `validate` uses, beside the base config and the trivial judges
    on the same votes. With -o, writes the config fitted on all votes, its provenance in a
    header comment. Only components the base config weighs (weight > 0) and the votes measure
    are fitted: a measure that is unavailable (CLIP without weights) keeps the base weight.

    \b
    Examples:
      svgscore calibrate votes.csv --config structural -o tuned.yaml
      svgscore calibrate votes.csv --config structural --prior configs/calibration/structural_prior.yaml
      svgscore score drawings/ --config tuned.yaml
    """
    try:
        prompts = read_manifest(manifest) if manifest else {}
        label_sets = load_labels(votes, (), prompts, prompt)
        keyed = [vote for s in label_sets for vote in s.votes or []]
        if any(s.votes is None for s in label_sets):
            raise UsageError("calibrate fits pairwise votes (CSV a,b,winner[,prompt]), not rankings")
        items = [ScoreItem(path=path, prompt=p) for path, p in sorted({k for a, b, _ in keyed for k in (a, b)}) if Path(path).is_file()]
        with Scorer(config, jobs=jobs, cache=not no_cache, **scorer_kwargs(clip_weights, device, plugins)) as scorer:
            results = {(r.path, r.prompt): r for r in scorer.score_items(items)}
            base = scorer.config
        shrink_to = base if prior is None else load_config(prior)
        base_from, prior_from = origin(base, votes), origin(shrink_to, votes)
        decided = decided_votes(keyed, results)
        found = calibrate(
            decided, results, {name: cfg.weight for name, cfg in base.checks.items()}, base.gates,
            folds=folds, seed=seed, l2=l2, prior={name: cfg.weight for name, cfg in shrink_to.checks.items()},
        )
        cross_validated = "calibrated, prompt-cross-validated"
        as_is = f"base config ({base.name})" + (", in-sample: its weights were chosen on these votes" if base_from.fitted_on_votes else "")
        unfitted = {f"prior ({prior_from.name}), not fitted": (found.prior, found.prior_weights)} if prior is not None else {}
        rows = {
            cross_validated: _figure(found.cross_validated),
            **{name: _figure(figure) for name, (figure, _) in unfitted.items()},
            as_is: _figure(found.base),
            **{name: _figure(value) for name, value in baselines(decided).items()},
            "calibrated, on the votes it was fitted on": _figure(found.in_sample),
        }
        trivial = baseline_picks(decided)
        judges_by_prompt = {
            cross_validated: found.held_out,
            **{name: {(a, b): (rescore(results[a], w, base.gates), rescore(results[b], w, base.gates)) for a, b, _ in decided} for name, (_, w) in unfitted.items()},
            as_is: {(a, b): (results[a].score, results[b].score) for a, b, _ in decided},
        }
        prompt_rows = {name: _prompt_figures(decided, picks, trivial) for name, picks in judges_by_prompt.items()}
        judged = {name: _figure(value) for name, value in judge_figures(judges, found.held_out).items()} if judges else {}
        if output is not None:
            text = header(votes, str(base.name), prior_from, found, seed=seed, l2=l2) + yaml.safe_dump(tuned_config(base_content(base), found.weights), sort_keys=False, allow_unicode=True)
            output.write_text(text, encoding="utf-8")
            load_config(output)  # what was written must load
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    report = {
        "votes_used": len(decided), "prompts": len({a[1] for a, _, _ in decided}), "folds": len(found.folds), "seed": seed, "l2": l2,
        "rows": rows, "by_prompt": prompt_rows, "weights": found.weights,
        "base_is_this_fit": all(abs(base.checks[name].weight - w) <= SAME_WEIGHT for name, w in found.weights.items()),
        "prior": {"config": prior_from.name, "sha256": prior_from.sha256, "given": prior is not None, "fitted_on_these_votes": prior_from.fitted_on_votes}, "judges": judged, "judges_file": str(judges) if judges else None,
        "output": str(output) if output else None,
    }
    click.echo(json.dumps(report, indent=2, ensure_ascii=False) if fmt == "json" else _table(report), nl=fmt == "json")
