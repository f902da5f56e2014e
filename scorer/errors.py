"""One exception hierarchy for the whole pipeline.

Two families, because callers treat them differently:

* ``UsageError`` — the *caller* got something wrong (bad config, unknown check, missing
  path). The CLI exits 2; the library raises.
* ``InputError`` — the *SVG file* is bad. It never escapes a batch: it becomes an error
  row whose ``error.code`` is the class's ``code``.
"""

from __future__ import annotations


class SvgScoreError(Exception):
    """Base class of every error svgscore raises on purpose."""


class UsageError(SvgScoreError):
    """The caller asked for something impossible: exit code 2 on the command line."""


class ConfigError(UsageError):
    """A configuration file or value is invalid (unknown key, out-of-range value, unknown check)."""


class ClipUnavailableError(UsageError):
    """CLIP weights could not be loaded and the config says ``clip.required: true``."""


class InputError(SvgScoreError):
    """The SVG itself is unusable. Each subclass names the ``error.code`` of its result row."""

    code = "input_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ReadError(InputError):
    code = "read_error"


class ParseError(InputError):
    code = "parse_error"


class UnsafeSvgError(InputError):
    code = "unsafe_svg"


class TooLargeError(InputError):
    code = "too_large"


class TooManyElementsError(TooLargeError):
    code = "too_many_elements"


class TooDeepError(TooLargeError):
    code = "too_deep"


class AttributeTooLargeError(TooLargeError):
    code = "attribute_too_large"


class RenderError(InputError):
    code = "render_error"


class RenderTimeoutError(InputError):
    code = "render_timeout"



class InternalError(InputError):
    """A bug in svgscore met by one file: reported on that file's row, never fatal to the batch."""

    code = "internal_error"


# -- Generation (``svgscore generate`` / ``extract``): a sample with no usable SVG is an error
# row too. The first two are the model's doing and count against it; the ``GenerationError``
# family is the endpoint's, so a resumed run asks again.


class TruncatedOutputError(InputError):
    """The reply stopped inside its SVG (``<svg`` without ``</svg>``), or at max_tokens before one."""

    code = "truncated_output"


class NoSvgError(InputError):
    """The reply holds no ``<svg>`` element at all (prose only, a refusal, an empty answer)."""

    code = "no_svg"


class GenerationError(InputError):
    """No reply to extract from: the request failed for good."""

    code = "generation_failed"


class RequestFailedError(GenerationError):
    code = "request_failed"


class RequestTimeoutError(GenerationError):
    code = "request_timeout"


class MalformedResponseError(GenerationError):
    code = "malformed_response"


def input_error_for(code: str, message: str) -> InputError:
    """The error a recorded ``code`` stands for (a manifest row's), so it keeps its class."""
    pending: list[type[InputError]] = [InputError]
    while pending:
        cls = pending.pop()
        if cls.code == code:
            return cls(message)
        pending.extend(cls.__subclasses__())
    error = InputError(message)
    error.code = code  # a code from a newer svgscore: keep it rather than guess
    return error
