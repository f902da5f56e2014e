"""The inspect_ai scorer in a real eval(): inspect's own mock model answers with canned replies,
the eval writes its log, and the log read back holds svgscore's scores, answers and records."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("inspect_ai")
from inspect_ai import Task, eval  # noqa: E402
from inspect_ai.dataset import Sample  # noqa: E402
from inspect_ai.log import read_eval_log  # noqa: E402
from inspect_ai.model import ModelOutput, ModelUsage, get_model  # noqa: E402
from inspect_ai.solver import generate  # noqa: E402

from scorer import Scorer, extract_svg  # noqa: E402
from scorer.integrations.inspect_ai_scorer import svgscore  # noqa: E402

from .conftest import FIXTURES, STRUCTURAL  # noqa: E402

PELICAN = FIXTURES / "ladder" / "05_crude_pelican_on_bicycle.svg"
TURTLE = FIXTURES / "other_prompt" / "turtle_roller_skates.svg"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # tenacity's, met inside inspect_ai
def test_svgscore_in_a_real_eval_with_the_mock_model(tmp_path):
    pelican, turtle = PELICAN.read_text(encoding="utf-8"), TURTLE.read_text(encoding="utf-8")
    samples = [
        Sample(id="pelican", input="Draw a pelican riding a bicycle as SVG.", target="a pelican riding a bicycle"),
        Sample(id="turtle", input="Draw a turtle wearing roller skates as SVG."),  # no target: judged on the input
        Sample(id="refusal", input="A pelican riding a bicycle, in SVG please.", target="a pelican riding a bicycle"),
    ]
    replies = {
        "Draw a pelican riding a bicycle as SVG.": f"Here it is:\n```svg\n{pelican}\n```",
        "Draw a turtle wearing roller skates as SVG.": f"<p>Sure</p>{turtle}",
        "A pelican riding a bicycle, in SVG please.": "I'd rather not draw today.",
    }

    def mock_reply(messages, tools, tool_choice, config) -> ModelOutput:
        # Keyed by the question, so the answers do not depend on the order samples run in.
        output = ModelOutput.from_content(model="mockllm/model", content=replies[messages[-1].text])
        # Usage given: else the mock counts tokens with tiktoken, which downloads its encoding.
        output.usage = ModelUsage(input_tokens=10, output_tokens=100, total_tokens=110)
        return output

    model = get_model("mockllm/model", custom_outputs=mock_reply)
    task = Task(dataset=samples, solver=generate(), scorer=svgscore(STRUCTURAL, jobs=1))
    [log] = eval(task, model=model, log_dir=str(tmp_path), display="none")
    assert log.status == "success", log.error

    drawn = {"pelican": extract_svg(pelican).svg, "turtle": extract_svg(turtle).svg}  # what the replies hold
    with Scorer(STRUCTURAL, jobs=1) as library:
        want = {
            "pelican": library.score_svg(drawn["pelican"], "a pelican riding a bicycle").to_dict(),
            "turtle": library.score_svg(drawn["turtle"], "Draw a turtle wearing roller skates as SVG.").to_dict(),
        }
    read = read_eval_log(log.location)  # the log file on disk, read back
    assert [p.name for p in tmp_path.iterdir()] == [log.location.rsplit("/", 1)[-1]]
    scores = {sample.id: sample.scores["svgscore"] for sample in read.samples}
    for name in ("pelican", "turtle"):
        score = scores[name]
        assert score.value == pytest.approx(want[name]["score"])
        assert score.metadata["components"] == want[name]["components"]  # the component table
        assert score.answer == drawn[name]
        assert score.explanation.splitlines()[0] == want[name]["summary"]
        assert any(line.startswith("element_count: ") for line in score.explanation.splitlines())
    refusal = scores["refusal"]
    assert refusal.value == 0.0 and refusal.answer is None
    assert refusal.metadata["status"] == "error" and refusal.metadata["error"]["code"] == "no_svg"

    [result] = read.results.scores
    expected_mean = (want["pelican"]["score"] + want["turtle"]["score"] + 0.0) / 3
    assert result.name == "svgscore"
    assert result.metrics["mean"].value == pytest.approx(expected_mean)
    assert "stderr" in result.metrics


def test_without_the_extra_the_import_says_how_to_install_it():
    code = "import sys; sys.modules['inspect_ai'] = None; import scorer.integrations.inspect_ai_scorer"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "pip install 'svgscore[inspect]'" in done.stderr
