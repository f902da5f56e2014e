"""SVG extraction from model replies: a table of real-looking replies, saved API responses, the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from scorer.cli import main
from scorer.config import Limits
from scorer.errors import ItemError
from scorer.harness.extract import extract_from_saved, extract_svg
from scorer.load import load_svg

A = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 80"><circle cx="30" cy="60" r="15"/><circle cx="70" cy="60" r="15"/></svg>'
B = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 80">\n  <ellipse cx="50" cy="30" rx="20" ry="12" fill="white"/>\n  <path d="M70 30 L95 35 L70 40 Z" fill="orange"/>\n</svg>'
NESTED = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 100"><svg x="10" y="10" width="40" height="40" viewBox="0 0 10 10"><rect width="10" height="10"/></svg><circle cx="70" cy="70" r="20"/></svg>'
DOCTYPE = '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">'
NO_XMLNS = '<svg viewBox="0 0 100 80" width="400"><rect x="10" y="10" width="80" height="60" fill="#8cf"/></svg>'

# (case id, reply, expected SVG or error code, words the note must contain or None for no note)
REPLIES = [
    ("fenced-svg", f"Here's a pelican riding a bicycle:\n\n```svg\n{A}\n```\n\nThe wheels are two circles.", A, None),
    ("fenced-xml-with-declaration", f'```xml\n<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n{B}\n```', B, None),
    ("fenced-bare", f"```\n{A}\n```", A, None),
    ("fenced-tilde", f"~~~svg\n{B}\n~~~\nDone.", B, None),
    ("bare-in-prose", f"Sure! {A} I hope you like it.", A, None),
    ("bare-multiline", f"Sure, here it is.\n\n{B}\n\nLet me know if you want changes.", B, None),
    (
        "html-wrapper",
        f'```html\n<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8"><title>Pelican</title></head>\n<body style="margin:0">\n  {NO_XMLNS}\n</body>\n</html>\n```',
        NO_XMLNS,
        None,
    ),
    ("two-drafts", f"First attempt:\n```svg\n{A}\n```\nHmm, the pelican is missing. Fixed version:\n```svg\n{B}\n```", B, ["2 SVG candidates", "last"]),
    ("two-bare", f"{A}\n\nOr, more detailed:\n\n{B}", B, ["2 SVG candidates"]),
    ("doctype-kept", f'<?xml version="1.0" encoding="ISO-8859-1"?>\n{DOCTYPE}\n{A}', f"{DOCTYPE}\n{A}", None),
    ("nested-svg", f"```svg\n{NESTED}\n```", NESTED, None),
    ("prose-mention-before", f"The `<svg>` root element sets the canvas with its viewBox:\n\n{A}", A, None),
    # A mention in prose after the drawing is flagged (it could be a second drawing cut off); the fenced one wins.
    ("fenced-beats-later-prose", f"```svg\n{A}\n```\nThe drawing is closed by `</svg>` and opened by <svg viewBox> as usual.", A, ["unclosed <svg"]),
    ("quoted-angle-bracket", '```svg\n<svg xmlns="http://www.w3.org/2000/svg" data-note="a>b" viewBox="0 0 10 10"><rect width="5" height="5"/></svg>\n```', '<svg xmlns="http://www.w3.org/2000/svg" data-note="a>b" viewBox="0 0 10 10"><rect width="5" height="5"/></svg>', None),
    ("self-closing", 'An empty canvas: <svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', None),
    ("complete-then-cut-off", f"```svg\n{A}\n```\nA better one:\n```svg\n{B[:60]}", A, ["unclosed <svg"]),
    ("truncated-in-body", f'Here is the SVG:\n\n```svg\n{B[:90]}', "truncated_output", None),
    ("truncated-in-tag", 'Sure:\n<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0', "truncated_output", None),
    ("truncated-at-start", "Let me draw it.\n\n```svg\n<svg", "truncated_output", None),
    ("thinking-drafts-ignored", f"<think>\nWheels first: {A} then the bird.\n</think>\n\nHere it is:\n```svg\n{B}\n```", B, None),
    ("refusal", "I'm sorry, but I can't produce images. Would a description help?", "no_svg", None),
    ("empty", "", "no_svg", None),
    ("fence-without-svg", "```python\nprint('pelican')\n```", "no_svg", None),
]


@pytest.mark.parametrize(("reply", "expected", "note"), [case[1:] for case in REPLIES], ids=[case[0] for case in REPLIES])
def test_reply_table(reply, expected, note):
    if not expected.startswith("<"):
        with pytest.raises(ItemError) as caught:
            extract_svg(reply)
        assert caught.value.code == expected
        return
    found = extract_svg(reply)
    assert found.svg == expected
    if note is None:
        assert found.note is None
    else:
        assert all(word in found.note for word in note), found.note
    load_svg(found.svg.encode(), Limits())  # every extracted SVG is one the scorer's loader accepts


def test_token_limit_is_noted_or_the_error():
    assert "token limit" in extract_svg(f"```svg\n{A}\n```\nNotes:", truncated=True).note
    with pytest.raises(ItemError) as caught:
        extract_svg("Let me think about the pelican's proportions first. The beak", truncated=True)
    assert caught.value.code == "truncated_output" and "token limit" in caught.value.message


def openai_response(content, finish="stop"):
    return json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}], "usage": {"prompt_tokens": 9, "completion_tokens": 99}})


def anthropic_response(*texts, stop="end_turn"):
    blocks = [{"type": "thinking", "thinking": f"draft: {A}"}] + [{"type": "text", "text": t} for t in texts]
    return json.dumps({"type": "message", "content": blocks, "stop_reason": stop, "usage": {"input_tokens": 9, "output_tokens": 99}})


@pytest.mark.parametrize(
    ("saved", "expected"),
    [
        (openai_response(f"```svg\n{A}\n```"), A),
        (openai_response([{"type": "text", "text": f"```svg\n{B}\n```"}]), B),  # content as parts
        (anthropic_response("Here:\n", f"```svg\n{B}\n```"), B),  # thinking blocks do not count
        (openai_response(f"```svg\n{B[:70]}", finish="length"), "truncated_output"),
        (anthropic_response("I'd start with the wheels, then", stop="max_tokens"), "truncated_output"),
        (openai_response(None), "no_svg"),
        (json.dumps({"choices": []}), "malformed_response"),
        (json.dumps({"error": {"message": "model overloaded"}, "choices": None}), "malformed_response"),
        (f"plain text, not JSON: {A}", A),
    ],
)
def test_saved_responses(saved, expected):
    if expected.startswith("<"):
        assert extract_from_saved(saved).svg == expected
    else:
        with pytest.raises(ItemError) as caught:
            extract_from_saved(saved)
        assert caught.value.code == expected


def test_cli_one_reply_prints_the_svg(tmp_path):
    reply = tmp_path / "reply.md"
    reply.write_text(REPLIES[7][1])  # two drafts
    result = CliRunner().invoke(main, ["extract", str(reply)])
    assert result.exit_code == 0 and result.stdout == B + "\n"
    assert "note: 2 SVG candidates" in result.stderr
    piped = CliRunner().invoke(main, ["extract", "-"], input=anthropic_response(f"```svg\n{A}\n```"))
    assert piped.exit_code == 0 and piped.stdout == A + "\n"


def test_cli_several_replies_give_jsonl_rows(tmp_path):
    (tmp_path / "ok.txt").write_text(f"```svg\n{A}\n```")
    (tmp_path / "cut.json").write_text(openai_response(f"```svg\n{B[:70]}", finish="length"))
    result = CliRunner().invoke(main, ["extract", str(tmp_path / "ok.txt"), str(tmp_path / "cut.json")])
    assert result.exit_code == 0
    ok, cut = map(json.loads, result.stdout.splitlines())
    assert ok == {"source": str(tmp_path / "ok.txt"), "status": "ok", "svg": A, "note": None, "error_code": None, "error_message": None}
    assert cut["status"] == "error" and cut["svg"] is None and cut["error_code"] == "truncated_output"


def test_cli_errors(tmp_path):
    (tmp_path / "no.txt").write_text("No drawing today.")
    result = CliRunner().invoke(main, ["extract", str(tmp_path / "no.txt")])
    assert result.exit_code == 1 and result.stdout == "" and "no_svg" in result.stderr
    both = CliRunner().invoke(main, ["extract", "--format", "svg", str(tmp_path / "no.txt"), str(tmp_path / "no.txt")])
    assert both.exit_code == 2 and "--format jsonl" in both.stderr
    missing = CliRunner().invoke(main, ["extract", str(tmp_path / "missing.txt")])
    assert missing.exit_code == 2
