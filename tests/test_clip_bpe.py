"""The torch-free CLIP tokenizer against open_clip's SimpleTokenizer, its reference: equal ids, bit for bit.

The comparison needs the reference, so the module is skipped without open_clip; the last test checks,
in a fresh interpreter, that the tokenizer itself loads neither torch nor open_clip.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("open_clip")
from open_clip.tokenizer import SimpleTokenizer, default_bpe  # noqa: E402

from scorer.measure.clip_bpe import ClipBpeTokenizer, bpe_vocabulary_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CLEANS = ("lower", "whitespace", "canonicalize")
CONTEXT_LENGTHS = (77, 16)
LONG_PROMPT = (
    "A detailed technical illustration of a Victorian steam locomotive crossing a stone viaduct at dawn, "
    "with labelled callouts for the boiler, firebox, smokebox, driving wheels, connecting rods, tender and cab; "
    "include a cut-away showing the fire tubes, a scale bar in metres, a compass rose, the river below with "
    "two rowing boats, mist in the valley, and a title block in the lower right corner reading 'Class 4 — 1897'."
)
PROMPTS = [
    "a pelican riding a bicycle",
    "a cross-section of a human heart, label the chambers",
    "an SVG of a café façade at night — neon 'OPEN' sign",
    "salt &amp; pepper shakers",
    "fish &amp;amp; chips, twice escaped",
    # ftfy unescapes entities itself, repeatedly, but only in text without "<" and ">": here the two html.unescape do it.
    "an <svg> of fish &amp;amp; chips",
    "&lt;svg&gt; &quot;logo&quot; &#169; &#x263A;",
    "a happy 🐱 cat and a 👩‍🚀 astronaut 🚀🌕",
    "富士山と桜の木、日本画風",
    "서울의 야경",
    "3 cats and 12 dogs, 2024-06-01, 3.14159",
    "it's a dog's life, they'll say we'd've",
    "THE DOG'S BALL IS RED",
    "it’s “curly” — ‘quoted’",
    "cafÃ© mojibake fixed by ftfy",
    "  leading, trailing  \n\n and\tinner\t\twhitespace \r\n ",
    "non\u00a0breaking\u3000ideographic\u2003em spaces",
    "snake_case_name and kebab-case-name!!!",
    "a prompt with its own <end_of_text> and <START_OF_TEXT> tokens",
    "l'été à Montréal, Straße, ΑΒΓ, русский, عربى, हिन्दी",
    "zero\u200bwidth and control\x00\x07 characters",
    "",
    "   ",
    "dog " * 14,  # with start and end: exactly 16 ids, nothing cut at context 16
    "dog " * 15,  # one over 16
    "dog " * 75,  # exactly 77
    "dog " * 76,  # one over 77
    LONG_PROMPT,
]


@functools.cache
def reference(clean: str, context_length: int) -> SimpleTokenizer:
    return SimpleTokenizer(context_length=context_length, clean=clean)


@functools.cache
def ours(clean: str, context_length: int) -> ClipBpeTokenizer:
    return ClipBpeTokenizer(context_length=context_length, clean=clean)


def assert_same_ids(texts: list[str], clean: str, context_length: int) -> None:
    expected = reference(clean, context_length)(texts).numpy()
    got = ours(clean, context_length)(texts)
    assert got.dtype == np.int64
    assert got.shape == expected.shape == (len(texts), context_length)
    for text, row, expected_row in zip(texts, got, expected, strict=True):
        assert row.tolist() == expected_row.tolist(), f"{text!r} (clean={clean}, context_length={context_length})"


@pytest.mark.parametrize("context_length", CONTEXT_LENGTHS)
@pytest.mark.parametrize("clean", CLEANS)
def test_prompts_tokenize_as_open_clip_does(clean: str, context_length: int) -> None:
    assert_same_ids(PROMPTS, clean, context_length)


@pytest.mark.parametrize("clean", CLEANS)
def test_prompts_encode_as_open_clip_does(clean: str) -> None:
    for text in PROMPTS:
        assert ours(clean, 77).encode(text) == reference(clean, 77).encode(text), text


def test_the_long_prompt_is_cut() -> None:
    """The truncation path (end token written over the last kept id) is exercised at both lengths."""
    assert len(ours("lower", 77).encode(LONG_PROMPT)) + 2 > 77
    ids = ours("lower", 77)([LONG_PROMPT])
    assert ids[0, -1] == ours("lower", 77).eot_token_id
    assert 0 not in ids


def test_a_single_string_is_one_row() -> None:
    np.testing.assert_array_equal(ours("lower", 77)(PROMPTS[0]), ours("lower", 77)([PROMPTS[0]]))
    assert ours("lower", 77)([]).shape == (0, 77)


# Pieces that random text rarely hits: contractions, entities, special tokens, punctuation runs, whitespace.
FRAGMENTS = [*"'s 'T 'll it DOG &amp; amp; &#39; <svg> <end_of_text> <START_OF_TEXT> _ ... é 3 🐱".split(), " ", "\n", "\t"]


@settings(max_examples=200, deadline=None)
@given(
    text=st.one_of(st.text(max_size=200), st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join)),
    clean=st.sampled_from(CLEANS),
    context_length=st.sampled_from(CONTEXT_LENGTHS),
)
def test_any_text_tokenizes_as_open_clip_does(text: str, clean: str, context_length: int) -> None:
    assert_same_ids([text], clean, context_length)
    assert ours(clean, context_length).encode(text) == reference(clean, context_length).encode(text)


def test_the_vocabulary_is_open_clips() -> None:
    assert bpe_vocabulary_path() == Path(default_bpe())


def test_a_missing_open_clip_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    find_spec = importlib.util.find_spec

    def without_open_clip(name: str, package: str | None = None):
        return None if name == "open_clip" else find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", without_open_clip)
    with pytest.raises(FileNotFoundError, match="open_clip is not installed"):
        bpe_vocabulary_path()

    empty = importlib.machinery.ModuleSpec("open_clip", None, is_package=True)
    empty.submodule_search_locations = [str(tmp_path)]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: empty)
    with pytest.raises(FileNotFoundError, match="bpe_simple_vocab_16e6.txt.gz is not in open_clip's package folder"):
        ClipBpeTokenizer()


@pytest.mark.parametrize("arguments", [{"context_length": 0}, {"clean": "upper"}])
def test_bad_arguments_are_refused(arguments: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(arguments))):
        ClipBpeTokenizer(**arguments)


def test_tokenizing_loads_neither_torch_nor_open_clip() -> None:
    code = (
        "import json, sys\n"
        "from scorer.measure.clip_bpe import ClipBpeTokenizer\n"
        "ids = ClipBpeTokenizer()(['a pelican riding a bicycle'])\n"
        "loaded = [name for name in ('torch', 'torchvision', 'open_clip') if name in sys.modules]\n"
        "print(json.dumps({'ids': ids[0].tolist(), 'loaded': loaded}))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["loaded"] == []
    assert result["ids"] == reference("lower", 77)(["a pelican riding a bicycle"])[0].tolist()
