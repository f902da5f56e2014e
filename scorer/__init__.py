"""svgscore — a reproducible judge for machine-generated SVG.

>>> from scorer import score_svg
>>> result = score_svg(open("drawing.svg").read(), prompt="a pelican riding a bicycle")
>>> result.score, result.components["bicycle_present"].explanation
"""

__version__ = "0.1.0"

from .api import Scorer, score_dir, score_file, score_svg  # noqa: E402
from .config import DEFAULT_PROMPT, Config, load_config  # noqa: E402
from .errors import (  # noqa: E402
    ClipUnavailableError,
    ConfigError,
    InputError,
    SvgScoreError,
    UsageError,
)
from .harness.extract import Extraction, extract_svg  # noqa: E402
from .inputs import ScoreItem  # noqa: E402
from .record import ClipInfo, Component, ErrorInfo, RenderInfo, ScoreResult  # noqa: E402

__all__ = [
    "DEFAULT_PROMPT",
    "ClipInfo",
    "ClipUnavailableError",
    "Component",
    "Config",
    "ConfigError",
    "ErrorInfo",
    "Extraction",
    "InputError",
    "RenderInfo",
    "ScoreItem",
    "ScoreResult",
    "Scorer",
    "SvgScoreError",
    "UsageError",
    "__version__",
    "extract_svg",
    "load_config",
    "score_dir",
    "score_file",
    "score_svg",
]
