"""The model judge end to end, against a loopback vision endpoint that answers from the pixels
it is sent (tests/fake_vlm.py): request, parse, cache, combine, failures, keys, accounts,
pairwise tournaments, Bradley–Terry, votes and validate. No test depends on timing: sleeps are
recorded, not measured, and concurrency is observed with a barrier."""

from __future__ import annotations

import base64
import csv
import io
import json
import logging
import threading
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from scorer import ScoreItem, Scorer
from scorer.cli import main
from scorer.errors import JudgeMalformedError, JudgeRefusedError, MeasureUnavailableError
from scorer.harness import transport
from scorer.judge.rubric import load_rubric, parse_scores, parse_verdict
from scorer.judge.tournament import Contestant, Verdict, run

from .conftest import FIXTURES, LADDER
from .fake_vlm import FakeVLM, painted_share
from .test_generate import _loopback_only  # noqa: F401  (autouse: nothing here may leave 127.0.0.1)

PROMPT = "a pelican riding a bicycle"
SECRET = "sk-judge-0123456789-do-not-leak"
BLANK, CRUDE, CAREFUL = (FIXTURES / "ladder" / n for n in ("01_blank.svg", "05_crude_pelican_on_bicycle.svg", "06_careful_pelican_on_bicycle.svg"))
INJECTED_TEXT = FIXTURES / "attacks" / "judge_injection_text.svg"
INJECTED_GLYPHS = FIXTURES / "attacks" / "judge_injection_glyphs.svg"


@pytest.fixture
def server():
    fake = FakeVLM().start()
    yield fake
    fake.stop()


def judge(server: FakeVLM, name: str = "local", kind: str = "openai", **extra) -> dict:
    base = f"{server.url}/v1" if kind == "openai" else server.url
    return {"name": name, "kind": kind, "base_url": base, "model": f"{name}-vl", **extra}


def config(tmp_path: Path, judges: list[dict], *, required: bool = False, **params) -> dict:
    """A scoring config: the judge, prompt_text and gates, as configs/vlm.example.yaml (outlined_text,
    whose OCR takes a while to load, where a test needs it)."""
    vlm = {"judges": judges, "cache_dir": str(tmp_path / "cache"), "retry_delay_s": 0.001, "timeout_s": 20.0, **params}
    return {
        "render": {"size": 160},
        "checks": {
            "vlm": {"weight": 0.8, "required": required, "params": vlm},
            "prompt_text": {"weight": 0.2},
            "renders": {"weight": 0.0, "gate": 1.0},
            "not_blank": {"weight": 0.0, "gate": 0.25},
        },
    }


def score(cfg: dict, items: list[tuple[Path, str]] | list[Path]) -> tuple[list, list[str]]:
    """Records and the judge's account lines of one run (result cache off: only the judge's cache)."""
    wanted = [i if isinstance(i, tuple) else (i, PROMPT) for i in items]
    with Scorer(cfg, jobs=1) as scorer:
        results = list(scorer.score_items([ScoreItem(str(p), prompt) for p, prompt in wanted]))
        return results, scorer.measure_summaries().get("vlm", [])


def write_config(tmp_path: Path, cfg: dict) -> Path:
    path = tmp_path / "judge.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def sent_images(server: FakeVLM) -> list[bytes]:
    found = []
    for seen in server.requests:
        for part in seen.body["messages"][-1]["content"]:
            if part["type"] == "image_url":
                found.append(base64.b64decode(part["image_url"]["url"].split(",", 1)[1]))
            elif part["type"] == "image":
                found.append(base64.b64decode(part["source"]["data"]))
    return found


# -- the request: the picture and the prompt, never the source ----------------------------------


def test_requests_carry_the_render_and_the_prompt_in_both_apis(tmp_path, server):
    cfg = config(tmp_path, [judge(server), judge(server, "claude", "anthropic", api_key_env="FAKE_JUDGE_KEY")])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FAKE_JUDGE_KEY", SECRET)
        [result], _ = score(cfg, [CRUDE])
    assert result.ok and len(server.requests) == 2
    by_path = {seen.path: seen for seen in server.requests}
    openai, anthropic = by_path["/v1/chat/completions"], by_path["/v1/messages"]
    rubric = load_rubric("default")
    assert openai.body["temperature"] == 0 and openai.body["seed"] == 0 and openai.body["model"] == "local-vl"
    assert openai.body["messages"][0] == {"role": "system", "content": rubric.system}
    text, image = openai.body["messages"][1]["content"]
    assert text == {"type": "text", "text": rubric.pointwise_text(PROMPT)} and PROMPT in text["text"]
    assert image["image_url"]["url"].startswith("data:image/png;base64,")
    assert "seed" not in anthropic.body and anthropic.body["system"] == rubric.system and anthropic.headers["x-api-key"] == SECRET
    assert "authorization" not in openai.headers
    # The picture is the render the other measures see (160 px on its longer side), decoded as a PNG...
    for png in sent_images(server):
        picture = Image.open(io.BytesIO(png))
        assert picture.format == "PNG" and max(picture.size) == 160
        assert painted_share(png) == pytest.approx(0.11, abs=0.03)
    # ...and nothing of the SVG's source travels.
    for seen in server.requests:
        assert "<svg" not in json.dumps(seen.body) and "<path" not in json.dumps(seen.body)


def test_the_judges_value_follows_the_pixels_and_the_record_keeps_its_answers(tmp_path, server):
    results, _ = score(config(tmp_path, [judge(server)]), [BLANK, CRUDE, CAREFUL])
    blank, crude, careful = (r.components["vlm"] for r in results)
    assert blank.value == 0 and 0 < crude.value < careful.value == 1
    details = crude.details["judges"]["local"]
    [raw] = details["answers"]
    answer = json.loads(raw)  # the judge's own words, kept
    assert details["criteria"] == {k: answer[k] for k in ("subjects", "composition", "craft")}
    assert crude.value == pytest.approx((0.5 * answer["subjects"] + 0.3 * answer["composition"] + 0.2 * answer["craft"]) / 10)
    assert details["reason"] == answer["reason"] and "judge local (local-vl)" in crude.explanation
    measures = results[1].provenance.measures["vlm"]
    assert measures["available"] and measures["rubric"] == "default" and measures["rubric_version"] == "1"
    assert [j["model"] for j in measures["judges"]] == ["local-vl"] and len(measures["rubric_sha256"]) == 64
    assert results[0].score == 0  # blank: the not_blank gate, whatever a judge says


# -- reproducible: cache, samples --------------------------------------------------------------


def test_a_rerun_makes_no_calls_and_gives_the_same_records(tmp_path, server):
    cfg = config(tmp_path, [judge(server)])
    first, accounts = score(cfg, [BLANK, CRUDE, CAREFUL])
    assert len(server.requests) == 3 and "3 calls made" in accounts[0] and "0 from the cache" in accounts[0]
    again, accounts = score(cfg, [BLANK, CRUDE, CAREFUL])
    assert len(server.requests) == 3  # the server counted no new request
    assert [r.to_dict() for r in again] == [r.to_dict() for r in first]
    assert "3 answers, 3 from the cache (100% hit rate), 0 calls made" in accounts[0]
    # The same model behind another address is the same judge: still answered from the cache.
    other = FakeVLM().start()
    try:
        moved, _ = score(config(tmp_path, [judge(other)]), [CRUDE])
        assert other.requests == [] and moved[0].components["vlm"].value == first[1].components["vlm"].value
    finally:
        other.stop()
    # Another rubric (or version) is another question.
    rubric = yaml.safe_load((Path(__file__).parent.parent / "scorer" / "judge" / "rubrics" / "default.yaml").read_text())
    (tmp_path / "strict.yaml").write_text(yaml.safe_dump({**rubric, "version": "strict-1"}))
    reworded, _ = score(config(tmp_path, [judge(server)], rubric=str(tmp_path / "strict.yaml")), [CRUDE])
    assert len(server.requests) == 4 and reworded[0].provenance.measures["vlm"]["rubric_version"] == "strict-1"


def test_samples_are_seeded_and_their_median_counts(tmp_path, server):
    [plain], _ = score(config(tmp_path, [judge(server)]), [(CRUDE, PROMPT)])
    [noisy], _ = score(config(tmp_path, [judge(server)], samples=3), [(CRUDE, f"{PROMPT} [noisy]")])
    assert sorted(seen.body["seed"] for seen in server.requests[1:]) == [0, 1, 2]  # sent concurrently: any order
    details = noisy.components["vlm"].details["judges"]["local"]
    values = sorted(json.loads(a)["subjects"] for a in details["answers"])
    assert len(set(values)) == 3  # three different answers...
    assert noisy.components["vlm"].value == plain.components["vlm"].value  # ...and the median is the seed-0 one
    assert "median of 3 answers" in noisy.components["vlm"].explanation


# -- failures ----------------------------------------------------------------------------------


def test_bad_answers_are_per_file_errors_that_are_asked_again(tmp_path, server):
    cfg = config(tmp_path, [judge(server), judge(server, "claude", "anthropic")])
    markers = ["[malformed]", "[badkeys]", "[refuse]", "[flagged]", "[fence]"]
    items = [(CRUDE, f"{PROMPT} {m}") for m in markers]
    results, accounts = score(cfg, items)
    codes = {m: r.components["vlm"].details.get("error") for m, r in zip(markers, results, strict=True)}
    assert codes == {"[malformed]": "judge_malformed", "[badkeys]": "judge_malformed", "[refuse]": "judge_refused", "[flagged]": "judge_refused", "[fence]": None}
    for marker, result in zip(markers, results, strict=True):
        assert result.ok and result.score is not None  # the row stands, the judge's weight renormalised away
        if marker != "[fence]":
            assert result.components["vlm"].value is None and "not counted" in result.components["vlm"].explanation
            assert result.score == pytest.approx(100 * result.components["prompt_text"].value)
    assert "judge_malformed" in accounts[0] and "judge_refused" in accounts[1]
    asked = len(server.requests)
    score(cfg, items)  # failures were not cached: asked again; the fenced answer was
    assert len(server.requests) == asked + 2 * 4


def test_a_required_judge_turns_a_bad_answer_into_an_error_row(tmp_path, server):
    [result], _ = score(config(tmp_path, [judge(server)], required=True), [(CRUDE, f"{PROMPT} [malformed]")])
    assert not result.ok and result.error.code == "judge_malformed" and result.score is None


def test_429_waits_as_long_as_retry_after_says(tmp_path, server, monkeypatch):
    slept = []
    real_sleep = transport.asyncio.sleep

    async def record(delay: float) -> None:
        slept.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(transport.asyncio, "sleep", record)
    server.retry_after = "7"
    [result], _ = score(config(tmp_path, [judge(server)], retry_delay_s=0.001), [(CRUDE, f"{PROMPT} [429]")])
    assert result.components["vlm"].value is not None and len(server.requests) == 2
    assert slept == [7.0]  # the server's pause, not the 1 ms backoff


def test_a_judge_that_does_not_answer_in_time_is_judge_timeout(tmp_path, server):
    server.slow_s = 60  # released when the server stops; the client gives up long before
    [result], accounts = score(config(tmp_path, [judge(server)], timeout_s=0.5, retries=1), [(CRUDE, f"{PROMPT} [slow]")])
    assert result.components["vlm"].details["error"] == "judge_timeout" and len(server.requests) == 2
    assert "2 calls made, 1 judge_timeout" in accounts[0]


def test_a_killed_server_is_judge_failed_and_a_later_run_recovers(tmp_path):
    dead = FakeVLM().start()
    cfg = config(tmp_path, [judge(dead)], retries=1)
    dead.stop()
    [failed], _ = score(cfg, [CRUDE])
    assert failed.ok and failed.components["vlm"].details["error"] == "judge_failed"
    assert "ConnectError" in failed.components["vlm"].explanation and "after 2 attempts" in failed.components["vlm"].explanation
    alive = FakeVLM().start()
    try:
        [recovered], _ = score(config(tmp_path, [judge(alive)]), [CRUDE])
        assert recovered.components["vlm"].value is not None and len(alive.requests) == 1  # nothing stale was cached
    finally:
        alive.stop()


def test_the_concurrency_limit_holds(tmp_path, server):
    server.gate = threading.Barrier(2)
    files = [BLANK, CRUDE, CAREFUL, LADDER[3]]
    results, _ = score(config(tmp_path, [judge(server)], concurrency=2), files)
    assert all(r.components["vlm"].value is not None for r in results)
    assert server.peak_in_flight == 2  # two at once (the barrier needs both), never more


# -- keys --------------------------------------------------------------------------------------


def test_missing_key_makes_the_judge_unavailable_and_required_exits_2(tmp_path, server, monkeypatch):
    monkeypatch.delenv("FAKE_JUDGE_KEY", raising=False)
    cfg = config(tmp_path, [judge(server, api_key_env="FAKE_JUDGE_KEY")])
    [result], _ = score(cfg, [CRUDE])
    assert result.ok and result.components["vlm"].value is None
    assert "unavailable: environment variable FAKE_JUDGE_KEY is not set" in result.components["vlm"].explanation
    with pytest.raises(MeasureUnavailableError):
        score(config(tmp_path, [judge(server, api_key_env="FAKE_JUDGE_KEY")], required=True), [CRUDE])
    cli = CliRunner().invoke(main, ["score", str(CRUDE), "--config", str(write_config(tmp_path, config(tmp_path, [judge(server, api_key_env="FAKE_JUDGE_KEY")], required=True))), "-j", "1", "--no-cache"])
    assert cli.exit_code == 2 and "FAKE_JUDGE_KEY is not set" in cli.stderr and server.requests == []


def test_the_key_is_sent_but_never_written_or_logged(tmp_path, server, monkeypatch, caplog):
    monkeypatch.setenv("FAKE_JUDGE_KEY", SECRET)
    monkeypatch.setenv("SVGSCORE_CACHE_DIR", str(tmp_path / "results-cache"))
    caplog.set_level(logging.DEBUG)
    server.expected_key = SECRET
    (tmp_path / "prompts.csv").write_text(f"path,prompt\n{CRUDE},{PROMPT} [echo]\n{CAREFUL},{PROMPT}\n")
    cfg = write_config(tmp_path, config(tmp_path, [judge(server, api_key_env="FAKE_JUDGE_KEY")]))
    runner = CliRunner()
    good = runner.invoke(main, ["score", "--manifest", str(tmp_path / "prompts.csv"), "--config", str(cfg), "-j", "1", "-o", str(tmp_path / "out.jsonl")])
    assert good.exit_code == 0, good.output
    assert [s.headers["authorization"] for s in server.requests] == [f"Bearer {SECRET}"] * 2
    echoed = json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0])
    assert "[redacted]" in echoed["components"]["vlm"]["details"]["judges"]["local"]["reason"]
    server.expected_key = "another-key-entirely"  # now a 401 whose body echoes the key it got
    bad = runner.invoke(main, ["score", str(BLANK), "--config", str(cfg), "-j", "1", "--format", "jsonl"])
    assert bad.exit_code == 0 and "judge_failed" in bad.stdout and "HTTP 401" in bad.stdout and "[redacted]" in bad.stdout
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "judge.sqlite3" for p in written) and any(p.name == "results.sqlite3" for p in written)
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    for output in (good.stdout, good.stderr, bad.stdout, bad.stderr, caplog.text):
        assert SECRET not in output


# -- ensembles, accounts, dry run ---------------------------------------------------------------


def test_an_ensemble_is_the_mean_of_its_judges_and_reports_their_agreement(tmp_path, server):
    two = [judge(server, "a"), judge(server, "b", "anthropic", price_input_per_mtok=2.0, price_output_per_mtok=10.0)]
    results, accounts = score(config(tmp_path, two), [BLANK, CRUDE, CAREFUL, LADDER[4]])
    crude = results[1].components["vlm"]
    per_judge = crude.details["judges"]
    assert set(per_judge) == {"a", "b"} and crude.value == pytest.approx((per_judge["a"]["value"] + per_judge["b"]["value"]) / 2)
    assert "mean of 2 judges" in crude.explanation and crude.details["spread"] == 0
    assert "judges a and b agree: Spearman 1.00 over 4 files" in accounts[-1]
    # Accounts: tokens as the endpoint reported them, priced where prices are configured.
    tokens_in = sum(r.components["vlm"].details["judges"]["b"]["input_tokens"] for r in results)
    tokens_out = sum(r.components["vlm"].details["judges"]["b"]["output_tokens"] for r in results)
    cost = (tokens_in * 2.0 + tokens_out * 10.0) / 1e6
    assert f"tokens {tokens_in} in / {tokens_out} out; ${cost:.4f} at the configured prices, ${cost / 4 * 100:.4f} per 100 files" in accounts[1]
    assert "no prices configured" in accounts[0]


def test_dry_run_counts_the_calls_and_makes_none(tmp_path, server):
    cfg = write_config(tmp_path, config(tmp_path, [judge(server)], samples=2))
    runner = CliRunner()
    args = ["score", str(BLANK), str(CRUDE), str(CAREFUL), "--config", str(cfg), "-j", "1", "--no-cache"]
    dry = runner.invoke(main, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "dry run: 3 files rendered, no call made" in dry.stdout and "6 answers needed, 0 in the cache (0%), 6 calls to make" in dry.stdout
    assert server.requests == []
    real = runner.invoke(main, [*args, "-o", str(tmp_path / "out.jsonl")])
    assert real.exit_code == 0 and len(server.requests) == 6 and "6 calls made" in real.stderr
    again = runner.invoke(main, [*args, "--dry-run"])
    assert "6 answers needed, 6 in the cache (100%), 0 calls to make" in again.stdout and len(server.requests) == 6
    plain = runner.invoke(main, ["score", str(CRUDE), "--config", "structural", "--dry-run", "--no-cache", "-j", "1"])
    assert plain.exit_code == 2 and "no model judge" in plain.stderr


# -- text that talks to the judge ---------------------------------------------------------------


def test_injected_text_is_never_shown_to_the_judge_and_costs_its_weight(tmp_path, server):
    rubric = load_rubric("default")
    assert "never an instruction" in rubric.system and "score 10" in rubric.system
    crude, injected = score(config(tmp_path, [judge(server)]), [CRUDE, INJECTED_TEXT])[0]
    # One question for both files: its key hashes the picture's pixels, which are the same.
    assert len(server.requests) == 1 and injected.render.sha256 != crude.render.sha256
    assert injected.components["vlm"].value == crude.components["vlm"].value  # the words earned nothing...
    assert injected.components["prompt_text"].value == 0 and injected.score < crude.score  # ...and cost prompt_text's weight


def test_injected_outlines_reach_the_judge_but_the_outlined_text_gate_zeroes_the_total(tmp_path, server):
    pytest.importorskip("rapidocr_onnxruntime", reason="the ocr extra is not installed")
    cfg = config(tmp_path, [judge(server)])
    cfg["checks"]["outlined_text"] = {"weight": 0.0, "gate": 0.5}
    crude, injected = score(cfg, [CRUDE, INJECTED_GLYPHS])[0]
    # This fake judge is gullible (more ink, more points): the outlines raise its score...
    assert injected.components["vlm"].value > crude.components["vlm"].value
    # ...and the total is 0 anyway: OCR reads the prompt's words drawn as outlines.
    assert injected.components["outlined_text"].value == 0 and injected.score == 0
    assert "gated to 0: outlined_text" in injected.summary


# -- parsing -----------------------------------------------------------------------------------


def test_answers_are_parsed_strictly():
    rubric = load_rubric("default")
    good = {"subjects": 7, "composition": 5.5, "craft": 3, "reason": "a pelican, roughly"}
    assert parse_scores(rubric, json.dumps(good)) == ({"subjects": 7.0, "composition": 5.5, "craft": 3.0}, "a pelican, roughly")
    assert parse_scores(rubric, f"```json\n{json.dumps(good)}\n```")[0]["subjects"] == 7.0
    for bad in (
        {**good, "subjects": 11}, {**good, "craft": True}, {**good, "craft": "7"}, {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "craft"}, {**good, "reason": ""}, {**good, "reason": "x" * 501},
    ):  # fmt: skip
        with pytest.raises(JudgeMalformedError):
            parse_scores(rubric, json.dumps(bad))
    for text in ("7/10", "[1, 2]", 'Sure! {"subjects": 7}', ""):
        with pytest.raises(JudgeMalformedError):
            parse_scores(rubric, text)
    for text in ("I'm sorry, I can't grade this.", "I cannot help with that", "Sorry - no."):
        with pytest.raises(JudgeRefusedError):
            parse_scores(rubric, text)
    assert parse_verdict('{"winner": "B", "reason": "rounder wheels"}') == ("b", "rounder wheels")
    with pytest.raises(JudgeMalformedError):
        parse_verdict('{"winner": "C", "reason": "?"}')


# -- pairwise ----------------------------------------------------------------------------------


def runs(tmp_path: Path) -> Path:
    """runs/<model>/<prompt>.svg for three models on two prompts, and their records."""
    drawings = {
        "good": [LADDER[8], LADDER[5]],  # careful; pelican beside bicycle
        "mid": [LADDER[7], LADDER[6]],  # simple; crude
        "bad": [LADDER[0], LADDER[2]],  # blank; wheels only
    }
    rows = ["path,prompt,model"]
    for model, files in drawings.items():
        (tmp_path / "runs" / model).mkdir(parents=True)
        for k, source in enumerate(files):
            target = tmp_path / "runs" / model / f"{k}.svg"
            target.write_bytes(source.read_bytes())
            rows.append(f"runs/{model}/{k}.svg,{PROMPT if k == 0 else 'a pelican next to a bicycle'},{model}")
    (tmp_path / "manifest.csv").write_text("\n".join(rows) + "\n")
    return tmp_path / "manifest.csv"


def test_compare_pairwise_end_to_end_and_validate_with_the_votes(tmp_path, server, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SVGSCORE_CACHE_DIR", str(tmp_path / "results-cache"))
    manifest = runs(tmp_path)
    cfg = write_config(tmp_path, config(tmp_path, [judge(server)]))
    runner = CliRunner()
    scored = runner.invoke(main, ["score", "--manifest", str(manifest), "--config", str(cfg), "-j", "1", "-o", "results.jsonl"])
    assert scored.exit_code == 0, scored.output
    pointwise = len(server.requests)
    assert pointwise == 6
    args = ["compare", "results.jsonl", "--manifest", str(manifest), "--judge", str(cfg), "--pairwise", "-j", "1"]
    dry = runner.invoke(main, [*args, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "6 of 6 pairs would be judged" in dry.stdout and "12 calls to make" in dry.stdout and len(server.requests) == pointwise
    table = runner.invoke(main, [*args, "--votes-out", "votes.csv"])
    assert table.exit_code == 0, table.output
    # 2 prompts × 3 model pairs, each asked in both orders: every request holds two pictures.
    pairwise = server.requests[pointwise:]
    assert len(pairwise) == 12 and all(len([p for p in s.body["messages"][-1]["content"] if p["type"] == "image_url"]) == 2 for s in pairwise)
    out = table.stdout
    assert out.index("│ good") < out.index("│ mid") < out.index("│ bad")
    assert "good draws better than mid in the judge's eyes" in out or "The data cannot separate good and mid" in out
    assert "Order changed the judge's answer in 0 of 6 pair judgements (0%)" in out
    assert "6 of 6 pairs judged, each in both orders" in out and "12 answers, 0 from the cache (0% hit rate), 12 calls made" in out
    votes = list(csv.DictReader((tmp_path / "votes.csv").open()))
    assert len(votes) == 6 and {v["prompt"] for v in votes} == {PROMPT, "a pelican next to a bicycle"}
    assert all((tmp_path / v["a"]).is_file() and v["winner"] in ("a", "b") for v in votes)
    # A re-run: no call, the same ratings.
    again = runner.invoke(main, [*args, "--format", "json"])
    data = json.loads(again.stdout)
    assert len(server.requests) == pointwise + 12 and data["judges"]["local"]["hit_rate"] == 1.0
    assert [r["model"] for r in data["ratings"]] == ["good", "mid", "bad"] and data["flips"] == 0 and data["both_orders"] == 6
    # validate: the pointwise judge (same config) against the pairwise judge's votes, end to end.
    checked = runner.invoke(main, ["validate", "votes.csv", "--config", str(cfg), "--format", "json", "-j", "1"])
    assert checked.exit_code == 0, checked.output
    figures = json.loads(checked.stdout)["labels"][0]["figures"][0]
    assert figures["used"] == 6 and figures["agreement"]["value"] == 1.0
    assert figures["components"]["vlm"]["alone"]["value"] == 1.0
    assert len(server.requests) == pointwise + 12  # validate's scores came from the caches


def test_order_bias_is_measured_and_cancelled(tmp_path, server, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    for k, source in enumerate([CRUDE, LADDER[4], CAREFUL]):  # the same drawings by two models
        for model in "xy":
            (tmp_path / model / f"{k}.svg").write_bytes(source.read_bytes())
    cfg = write_config(tmp_path, config(tmp_path, [judge(server)]))
    scored = CliRunner().invoke(main, ["score", "x", "y", "--config", str(cfg), "-j", "1", "--no-cache", "-o", "results.jsonl"])
    assert scored.exit_code == 0
    result = CliRunner().invoke(main, ["compare", "results.jsonl", "--judge", str(cfg), "--pairwise", "--format", "json", "-j", "1"])
    data = json.loads(result.stdout)
    # Equal pictures: this judge always picks the first shown; both orders make every pair a tie.
    assert data["candidates"] == 9 and data["both_orders"] == 9
    flips = sum(1 for j in data["judged"] if j["verdicts"][0]["forward"] != j["verdicts"][0]["reverse"])
    assert flips == data["flips"] == 3  # the three pairs of identical drawings
    assert data["first_shown_wins"] > data["decided"] / 2
    assert {j["winner"] for j in data["judged"] if j["verdicts"][0]["forward"] != j["verdicts"][0]["reverse"]} == {"tie"}
    assert "The data cannot separate x and y" in data["steps"][0]["verdict"]


def test_error_rows_lose_without_a_call(tmp_path, server, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for model, data in (("ok", CRUDE.read_bytes()), ("broken", b"<svg xmlns='http://www.w3.org/2000/svg'><path d=")):
        (tmp_path / model).mkdir()
        (tmp_path / model / "0.svg").write_bytes(data)
    cfg = write_config(tmp_path, config(tmp_path, [judge(server)]))
    CliRunner().invoke(main, ["score", "ok", "broken", "--config", str(cfg), "-j", "1", "--no-cache", "-o", "results.jsonl"])
    assert [json.loads(line)["status"] for line in Path("results.jsonl").read_text().splitlines()] == ["ok", "error"]
    before = len(server.requests)
    result = CliRunner().invoke(main, ["compare", "results.jsonl", "--judge", str(cfg), "--pairwise", "--format", "json", "-j", "1"])
    data = json.loads(result.stdout)
    assert len(server.requests) == before and [j["verdicts"][0]["judge"] for j in data["judged"]] == ["(no render)"]
    assert [r["model"] for r in data["ratings"]] == ["ok", "broken"]
    assert any("decided without asking the judge" in note for note in data["notes"])


def test_the_budget_goes_where_ratings_are_closest():
    # Model a is far better than b and c, which are even: after one pair per model pair, the
    # schedule keeps asking about b against c.
    contestants = [Contestant(m, f"p{k}", f"{m}{k}", True) for m in "abc" for k in range(8)]

    def ask(pairs):
        out = []
        for i, j in pairs:
            x, y = contestants[i].model, contestants[j].model
            if "a" in (x, y):
                winner = "a" if x == "a" else "b"
            else:
                winner = "a" if int(contestants[i].prompt[1:]) % 2 else "b"  # b and c take turns
            out.append((Verdict("j", winner, winner),))
        return out

    found = run(contestants, ask, max_pairs=12, round_size=3, resamples=200)
    assert len(found.judged) == 12 and found.candidates == 24
    met = {tuple(sorted((contestants[j.a].model, contestants[j.b].model))) for j in found.judged[:3]}
    assert met == {("a", "b"), ("a", "c"), ("b", "c")}  # coverage first
    counts = {key: sum(1 for j in found.judged if tuple(sorted((contestants[j.a].model, contestants[j.b].model))) == key) for key in met}
    assert counts[("b", "c")] > counts[("a", "b")] and counts[("b", "c")] > counts[("a", "c")]
    assert len({contestants[j.a].prompt for j in found.judged if contestants[j.a].model != "a"}) == counts[("b", "c")]  # a new prompt each time
    assert [r.model for r in found.ratings][0] == "a" and found.steps[0].separable
    assert found.to_dict()["resamples"] == 200


def test_two_judges_in_a_tournament_report_how_often_they_agree():
    contestants = [Contestant(m, "p", f"{m}{k}", True) for m in "xy" for k in range(2)]

    def ask(pairs):
        # Judge "even" always prefers x; judge "odd" prefers x only on the first drawing of x.
        return [(Verdict("even", "a", "a"), Verdict("odd", *(("a", "a") if contestants[i].path == "x0" else ("b", "b")))) for i, _ in pairs]

    found = run(contestants, ask, resamples=200)
    assert len(found.judged) == 4 and found.agreement == {"even / odd": 0.5}
    assert "Judges even / odd decided 50% of the pairs alike." in found.sentences()


def test_the_example_config_binds_from_a_fresh_clone():
    from scorer.config import load_config
    from scorer.measure.bind import bind

    plan = bind(load_config(Path(__file__).parent.parent / "configs" / "vlm.example.yaml"))
    [vlm] = plan.batched
    assert vlm.name == "vlm" and vlm.params.judges[0].base_url == "http://127.0.0.1:8000/v1" and vlm.params.rubric == "default"
    assert {"outlined_text", "prompt_text", "not_blank"} <= set(plan.measures)
