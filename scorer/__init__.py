"""svgscore — a reproducible judge for machine-generated SVG.

>>> from scorer import score_svg
>>> result = score_svg(open("drawing.svg").read(), prompt="a pelican riding a bicycle")
>>> result.score, result.components["bicycle_present"].explanation
"""

from .api import Scorer, score_dir, score_file, score_svg
from .config import DEFAULT_PROMPT, Config, load_config
from .errors import (
    ConfigError,
    ItemError,
    MeasureUnavailableError,
    PluginError,
    SvgScoreError,
    UsageError,
)
from .harness.extract import Extraction, extract_svg
from .inputs import ScoreItem
from .measure.registry import BatchItem, Measurement, MeasureParams, MeasureUnavailable, batched, check
from .record import Component, ErrorInfo, Provenance, RenderInfo, ScoreResult
from .version import __version__

__all__ = [
    "DEFAULT_PROMPT",
    "BatchItem",
    "Component",
    "Config",
    "ConfigError",
    "ErrorInfo",
    "Extraction",
    "ItemError",
    "MeasureParams",
    "MeasureUnavailable",
    "MeasureUnavailableError",
    "Measurement",
    "PluginError",
    "Provenance",
    "RenderInfo",
    "ScoreItem",
    "ScoreResult",
    "Scorer",
    "SvgScoreError",
    "UsageError",
    "__version__",
    "batched",
    "check",
    "extract_svg",
    "load_config",
    "score_dir",
    "score_file",
    "score_svg",
]
