"""Anti-gaming checks: ways to look like the prompt to a metric without drawing it.

Most are meant as gates (a low value zeroes the score): outlined words, an embedded bitmap,
an invisible drawing or a one-pixel image are not drawings of the subject, however the other
components rate them. ``<text>`` is different: CLIP is shown the render without it
(:attr:`Drawing.picture`), and real generators often caption honest drawings, so spelling
the prompt there only costs ``prompt_text``'s weight. See tests/test_antigaming.py.
"""

from __future__ import annotations

import re
from difflib import SequenceMatcher

import numpy as np
from pydantic import Field

from ..load import parse_length
from . import ocr
from .checks import BICYCLE_WORDS
from .drawing import Drawing
from .registry import Measurement, MeasureParams, check

# scikit-image is imported inside the checks that use it, as in craft.py: only workers run them.

# Words that never name a subject, however long: they appear in prompts but prove nothing when written.
_FILLER = frozenset({"with", "from", "that", "this", "into", "onto", "over", "under", "their", "there", "while", "some"})


class PromptTextParams(MeasureParams):
    similarity: float = Field(0.8, gt=0, le=1, description="difflib ratio at which a written word counts as a prompt word")


@check(
    "prompt_text",
    "1 unless <text> (with its <tspan>/<textPath>) spells the prompt's words; CLIP never sees <text>, "
    "so this is a penalty for captioning, not a gate",
    params=PromptTextParams,
)
def prompt_text(drawing: Drawing, params: PromptTextParams) -> Measurement:
    return _written_words(drawing.prompt, [("<text>", text) for text in drawing.geometry.texts], params.similarity, "")


class OutlinedTextParams(PromptTextParams):
    side: int = Field(224, ge=64, le=2048, description="longer side (px) of the image OCR reads: CLIP's own input size (words from ~10 px tall); 448 also finds ~8 px words at 5× the cost")
    min_confidence: float = Field(0.6, gt=0, le=1, description="OCR lines below this confidence are ignored")


@check(
    "outlined_text",
    "1 unless OCR reads the prompt's words in CLIP's picture (the render without <text>): words drawn as glyph "
    "outlines, the typographic attack the tree cannot see; needs the ocr extra; use as a gate",
    params=OutlinedTextParams,
    provenance=lambda _: ocr.provenance(),
    setup=ocr.load,
)
def outlined_text(drawing: Drawing, params: OutlinedTextParams) -> Measurement:
    reason = ocr.unavailable()
    if reason is not None:
        # Weight 0 and value 1: an open gate that changes nothing, and says why.
        return Measurement(1.0, f"not checked: {reason}", {"ocr": reason})
    lines = ocr.read_lines(drawing.picture.on_white, params.side, params.min_confidence)
    return _written_words(drawing.prompt, [("OCR", text) for text, _ in lines], params.similarity, " drawn as outlines")


def _written_words(prompt: str, texts: list[tuple[str, str]], similarity: float, how: str) -> Measurement:
    words = prompt_words(prompt)
    found = sorted({f"{word} ({where})" for where, text in texts for word in words if mentions(text, word, similarity)})
    details = {"prompt_words_written": found, "texts": [text[:80] for _, text in texts[:20]]}  # a sample, for the record
    if found:
        return Measurement(0.0, f"the prompt is written{how} rather than drawn: {', '.join(found)}", details)
    return Measurement(1.0, f"no prompt word among {len(texts)} text(s) read", details)


def prompt_words(prompt: str) -> tuple[str, ...]:
    """The prompt's subject words (4+ letters), with every bicycle synonym when it names a bicycle."""
    words = {w for w in re.findall(r"[a-z]+", prompt.lower()) if len(w) >= 4 and w not in _FILLER}
    if words.intersection(BICYCLE_WORDS):
        # Singulars only: plurals are near matches anyway (see ``mentions``).
        words.update(w for w in BICYCLE_WORDS if len(w) >= 4 and not w.endswith("s"))
    return tuple(sorted(words))


def mentions(text: str, word: str, similarity: float) -> bool:
    """True when ``word`` is in ``text``, ignoring case, spaces and punctuation, or nearly so (OCR misreads)."""
    letters = re.sub(r"[^a-z]", "", text.lower())
    if word in letters:
        return True
    spans = {letters[i : i + n] for n in (len(word) - 1, len(word), len(word) + 1) for i in range(max(1, len(letters) - n + 1))}
    return any(SequenceMatcher(None, word, span).ratio() >= similarity for span in spans if span)


class EmbeddedRasterParams(MeasureParams):
    resolution: int = Field(128, ge=16, le=1024, description="grid cells along the canvas's longer side for the coverage estimate")


@check(
    "embedded_raster",
    "1 − the share of the canvas covered by embedded bitmaps (<image>): a photo or a pasted render is not vector drawing",
    params=EmbeddedRasterParams,
)
def embedded_raster(drawing: Drawing, params: EmbeddedRasterParams) -> Measurement:
    from skimage.draw import polygon as fill_polygon

    images = drawing.geometry.images
    canvas = drawing.svg.canvas
    scale = params.resolution / max(canvas.width, canvas.height)
    grid = np.zeros((max(1, round(canvas.height * scale)), max(1, round(canvas.width * scale))), dtype=bool)
    for image in images:
        rows, cols = fill_polygon((image.points[:, 1] - canvas.y) * scale, (image.points[:, 0] - canvas.x) * scale, grid.shape)
        grid[rows, cols] = True
    share = float(grid.mean())
    return Measurement(
        1.0 - share,
        f"{len(images)} embedded bitmap(s) cover {share:.0%} of the canvas",
        {"images": len(images), "covered_share": round(share, 4)},
    )


class ContrastParams(MeasureParams):
    low: float = Field(10.0, ge=0, description="CIE76 ΔE from the background at which content counts as invisible (value 0)")
    high: float = Field(30.0, gt=0, description="ΔE at which content is clearly visible (value 1)")
    percentile: float = Field(90.0, gt=0, le=100, description="which content pixel's ΔE stands for the drawing (its most visible part)")


@check(
    "contrast",
    "how far the drawing's colours stand out from its background (CIELAB ΔE): dark on dark scores 0",
    params=ContrastParams,
)
def contrast(drawing: Drawing, params: ContrastParams) -> Measurement:
    from skimage.color import deltaE_cie76, rgb2lab

    mask = drawing.content_mask
    if not mask.any():
        return Measurement(0.0, "no content differs from the background", {"delta_e": 0.0})
    background = rgb2lab(drawing.background.astype(np.uint8)[None, None, :])[0, 0]
    delta = float(np.percentile(deltaE_cie76(rgb2lab(drawing.raster.on_white[mask][None]), background), params.percentile))
    value = float(np.clip((delta - params.low) / max(params.high - params.low, 1e-9), 0.0, 1.0))
    return Measurement(
        value,
        f"content stands out from the background by ΔE {delta:.1f} (p{params.percentile:g}; "
        f"invisible below {params.low:g}, clear from {params.high:g})",
        {"delta_e": round(delta, 3)},
    )


class DisplaySizeParams(MeasureParams):
    min_px: float = Field(32.0, gt=0, description="declared longer side (px) below which a viewer sees a speck")


@check(
    "display_size",
    "the size the file declares for itself (width/height): a 1×1 px image shows nothing, however it renders here",
    params=DisplaySizeParams,
)
def display_size(drawing: Drawing, params: DisplaySizeParams) -> Measurement:
    values = [drawing.svg.root.get(name) for name in ("width", "height")]
    # Percentages and missing sizes scale to their container: only absolute sizes can be too small.
    sizes = [size for v in values if v and "%" not in v and (size := parse_length(v, 0.0)) is not None]
    if not sizes:
        return Measurement(1.0, "no absolute size declared: it scales to its container", {"declared_px": None})
    longer = max(sizes)
    return Measurement(
        float(np.clip(longer / params.min_px, 0.0, 1.0)),
        f"declares itself {longer:g} px on its longer side (a speck below {params.min_px:g} px)",
        {"declared_px": longer},
    )
