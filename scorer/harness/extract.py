"""The SVG in a model's reply: pure functions from reply text to one SVG document.

Replies wrap their drawing in many ways — a fenced block (```svg, ```xml, ```html, bare ```),
a bare ``<svg>...</svg>`` in prose, an HTML page around it, a first draft followed by a fixed
one, or a reply cut off at the token limit. The rule: take the last *complete* top-level
``<svg>`` element, preferring fenced blocks over prose, and say so when there was a choice.
The SVG is returned verbatim; repairs (a missing xmlns, an undeclared xlink prefix) are the
loader's job, so the score notes them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from ..errors import NoSvgError, TruncatedOutputError
from .endpoints import reply_from_json

# A fenced block: ``` or ~~~ with any info string; an unclosed fence (a cut-off reply) runs to the end.
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n]*\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)", re.MULTILINE | re.DOTALL)
# An opening tag, whole: quoted attribute values may hold '>'. Ends in '/>' when self-closing.
_OPEN = re.compile(r"""<svg(?=[\s/>])(?:[^>"']|"[^"]*"|'[^']*')*>""", re.IGNORECASE)
_CLOSE = re.compile(r"</svg\s*>", re.IGNORECASE)
# Reasoning models served raw (llama.cpp, vLLM) think aloud in the reply itself; drafts in
# there are not the answer.
_THINKING = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)
# Any start of an <svg> element, even one cut off inside its tag.
_START = re.compile(r"<svg(?![\w:.-])", re.IGNORECASE)
# A DOCTYPE right before the element belongs to it (it may declare what the drawing uses);
# an XML declaration is dropped instead: the SVG is stored as UTF-8, whatever encoding it named.
_DOCTYPE = re.compile(r"<!DOCTYPE\s+svg\b(?:[^>\[]|\[[^\]]*\])*>\s*\Z", re.IGNORECASE)


@dataclass(frozen=True)
class Extraction:
    """The SVG found, and a note when finding it involved a choice (else None)."""

    svg: str
    note: str | None = None


def extract_svg(reply: str, *, truncated: bool = False) -> Extraction:
    """The last complete ``<svg>`` element of ``reply``.

    ``truncated``: the endpoint said the reply stopped at its token limit.
    Raises :class:`TruncatedOutputError` when an SVG was started but never finished (or the
    limit came first), :class:`NoSvgError` when there is no SVG at all.
    """
    reply = _THINKING.sub("", reply)
    fenced = [(m.start(2), m.group(2)) for m in _FENCE.finditer(reply)]
    candidates = [(offset + s, offset + e) for offset, block in fenced for s, e in _complete_elements(block)]
    if not candidates:  # no fenced SVG: look through the whole reply, prose and HTML included
        candidates = _complete_elements(reply)
    if not candidates:
        if _START.search(reply):
            raise TruncatedOutputError("the reply starts an <svg> element but never closes it (cut off?)")
        if truncated:
            raise TruncatedOutputError("the reply hit its token limit before any SVG")
        raise NoSvgError("the reply contains no <svg> element")
    start, end = candidates[-1]
    notes = []
    if len(candidates) > 1:
        notes.append(f"{len(candidates)} SVG candidates in the reply; took the last complete one")
    if _START.search(reply, end):
        notes.append("an unclosed <svg after it was ignored")
    if truncated:
        notes.append("the reply was cut off at its token limit")
    doctype = _DOCTYPE.search(reply, 0, start)
    return Extraction(reply[doctype.start() if doctype else start : end], "; ".join(notes) or None)


def _complete_elements(text: str) -> list[tuple[int, int]]:
    """Spans of the complete top-level ``<svg>`` elements of ``text``, in order.

    Tags are matched like brackets, so nested ``<svg>`` elements stay inside their parent and
    an unmatched mention (prose saying "the `<svg>` root") does not swallow the real drawing.
    """
    tags = sorted(
        [(m.start(), m.end(), "self" if m.group().endswith("/>") else "open") for m in _OPEN.finditer(text)]
        + [(m.start(), m.end(), "close") for m in _CLOSE.finditer(text)]
    )
    opened: list[int] = []
    spans = []
    for start, end, kind in tags:
        if kind == "self":
            spans.append((start, end))
        elif kind == "open":
            opened.append(start)
        elif opened:
            spans.append((opened.pop(), end))
    top: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if not top or start >= top[-1][1]:  # spans nest or are disjoint; inner ones start inside
            top.append((start, end))
    return top


def extract_from_saved(text: str) -> Extraction:
    """The SVG in a saved reply: plain reply text, or a whole OpenAI / Anthropic JSON response."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    reply = reply_from_json(data)
    return extract_svg(text) if reply is None else extract_svg(reply.text, truncated=reply.truncated)
