"""Stage 4 — combine: components + weights + gates → one score in [0, 100] and why."""

from __future__ import annotations

from collections.abc import Mapping

from .record import Component


def combine(components: Mapping[str, Component], gates: Mapping[str, float]) -> tuple[float | None, str]:
    """Weighted mean of the counted components, scaled to 0–100, unless a gate closes.

    Components whose value is ``None`` (not applicable, or CLIP unavailable) drop out and
    the remaining weights are renormalised. A gate closes when its component's value is below
    the gate's threshold; the score is then 0.
    """
    for name, threshold in gates.items():
        component = components.get(name)
        if component is not None and component.value is not None and component.value < threshold:
            return 0.0, f"gated to 0: {name} = {component.value:.2f} is below its gate {threshold:.2f}"
    counted = {n: c for n, c in components.items() if c.value is not None and c.weight > 0}
    total_weight = sum(c.weight for c in counted.values())
    if total_weight == 0:
        return None, "no weighted component could be measured"
    score = 100.0 * sum(c.weight * c.value for c in counted.values()) / total_weight  # type: ignore[operator]
    dropped = [n for n, c in components.items() if c.value is None and c.weight > 0]
    note = f"; {', '.join(dropped)} not counted, weights renormalised" if dropped else ""
    return round(score, 4), f"weighted mean of {len(counted)} components{note}"
