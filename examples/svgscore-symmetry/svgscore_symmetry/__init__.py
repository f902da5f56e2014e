"""An example svgscore measure: left–right mirror symmetry of the render.

A per-file measure is one decorated function of ``(drawing, params)`` returning a
``Measurement``; its parameters are a pydantic model. It runs in svgscore's isolated workers,
on the same render every built-in check sees.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from scorer import Measurement, MeasureParams, check


class SymmetryParams(MeasureParams):
    tolerance: int = Field(24, ge=0, le=255, description="per-channel difference (0–255) below which two pixels count as equal")


@check("mirror_symmetry", "share of the drawing's pixels that match their mirror image across the vertical centre line", params=SymmetryParams)
def mirror_symmetry(drawing, params: SymmetryParams) -> Measurement:
    rgb = drawing.raster.on_white.astype(np.int16)
    content = drawing.content_mask
    if not content.any():
        return Measurement(0.0, "nothing drawn: no symmetry to speak of", {"matched": 0.0})
    equal = np.abs(rgb - rgb[:, ::-1]).max(axis=-1) <= params.tolerance
    # Only pixels where either side has content count: a blank margin is trivially symmetric.
    considered = content | content[:, ::-1]
    share = float(equal[considered].mean())
    return Measurement(round(share, 6), f"{share:.0%} of drawn pixels match their left–right mirror image", {"matched": round(share, 6)})
