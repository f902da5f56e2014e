"""One exception hierarchy for the whole pipeline.

Two families, because callers treat them differently:

* ``UsageError`` — the *caller* got something wrong (bad config, unknown measure, missing
  path, a plugin that does not import). The CLI exits 2; the library raises.
* ``ItemError`` — something went wrong with *one item* of a batch: the SVG is bad, it hung
  the renderer, a model judge answered nonsense, or svgscore met a bug on it. It never
  escapes a batch: it becomes an error row whose ``error.code`` is the class's ``code``.
  Each class says whether the same input would fail the same way again (``deterministic``):
  only those rows may be cached.
"""

from __future__ import annotations

from typing import ClassVar


class SvgScoreError(Exception):
    """Base class of every error svgscore raises on purpose."""


class UsageError(SvgScoreError):
    """The caller asked for something impossible: exit code 2 on the command line."""


class ConfigError(UsageError):
    """A configuration file or value is invalid (unknown key, out-of-range value, unknown check)."""


class PluginError(UsageError):
    """A measure plugin (entry point or ``plugins:`` module) could not be imported or registered."""


class MeasureUnavailableError(UsageError):
    """A batched measure (CLIP, a model judge) cannot run and the config says ``required: true``."""


class ItemError(SvgScoreError):
    """One item's failure, reported on its result row. Each subclass names the row's ``error.code``."""

    code = "item_error"
    deterministic: ClassVar[bool] = True  # the same bytes, prompt and config fail the same way

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ReadError(ItemError):
    code = "read_error"


class ParseError(ItemError):
    code = "parse_error"


class UnsafeSvgError(ItemError):
    code = "unsafe_svg"


class TooLargeError(ItemError):
    code = "too_large"


class TooManyElementsError(TooLargeError):
    code = "too_many_elements"


class TooDeepError(TooLargeError):
    code = "too_deep"


class AttributeTooLargeError(TooLargeError):
    code = "attribute_too_large"


class RenderError(ItemError):
    code = "render_error"


class RenderTimeoutError(ItemError):
    code = "render_timeout"
    deterministic = False  # a busy machine may finish it next time


class InternalError(ItemError):
    """A bug in svgscore met by one file: reported on that file's row, never fatal to the batch."""

    code = "internal_error"
    deterministic = False  # a fixed bug must not be answered from the cache


# -- Generation (``svgscore generate`` / ``extract``): a sample with no usable SVG is an error
# row too. The first two are the model's doing and count against it; the ``GenerationError``
# family is the endpoint's, so a resumed run asks again.


class TruncatedOutputError(ItemError):
    """The reply stopped inside its SVG (``<svg`` without ``</svg>``), or at max_tokens before one."""

    code = "truncated_output"


class NoSvgError(ItemError):
    """The reply holds no ``<svg>`` element at all (prose only, a refusal, an empty answer)."""

    code = "no_svg"


class GenerationError(ItemError):
    """No reply to extract from: the request failed for good."""

    code = "generation_failed"
    deterministic = False  # the endpoint may answer next time


class RequestFailedError(GenerationError):
    code = "request_failed"


class RequestTimeoutError(GenerationError):
    code = "request_timeout"


class MalformedResponseError(GenerationError):
    code = "malformed_response"


# -- Model judges (the ``vlm`` measure, ``compare --pairwise``): a judge that gave no usable
# answer for one file. Never cached: the endpoint may answer next time.


class JudgeError(ItemError):
    """The judge's request failed for good (HTTP error, connection refused, retries exhausted)."""

    code = "judge_failed"
    deterministic = False


class JudgeTimeoutError(JudgeError):
    code = "judge_timeout"


class JudgeMalformedError(JudgeError):
    """The judge answered, but not with the JSON the rubric asks for (or cut off at max_tokens)."""

    code = "judge_malformed"


class JudgeRefusedError(JudgeError):
    """The judge declined to grade (the endpoint flagged a refusal, or it apologised instead of answering)."""

    code = "judge_refused"


def item_error_for(code: str, message: str) -> ItemError:
    """The error a recorded ``code`` stands for (a manifest row's), so it keeps its class."""
    pending: list[type[ItemError]] = [ItemError]
    while pending:
        cls = pending.pop()
        if cls.code == code:
            return cls(message)
        pending.extend(cls.__subclasses__())
    error = ItemError(message)
    error.code = code  # a code from a newer svgscore: keep it rather than guess
    return error
