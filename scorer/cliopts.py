"""Options every scoring command shares (score, validate, calibrate, serve), defined once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def scorer_options(fn: F) -> F:
    """``--clip-weights``, ``--device``, ``--precision`` and ``--plugin``: they reach the :class:`~scorer.Scorer`
    through :func:`scorer_kwargs` as measure parameters and plugin modules."""
    for option in reversed(
        (
            click.option(
                "--clip-weights",
                type=click.Path(exists=True, dir_okay=False),
                help="Local open_clip checkpoint for the clip measure (also: SVGSCORE_CLIP_WEIGHTS).",
            ),
            click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), help="Where the clip measure runs [default: its params.device, auto]."),
            click.option(
                "--precision",
                type=click.Choice(["auto", "fp32", "bf16"]),
                expose_value=False,  # kept in the context for scorer_kwargs: no command signature changes
                callback=_remember_precision,
                help="The clip measure's precision: bf16 where the hardware multiplies it (AMX, AVX-512 BF16, CUDA), "
                "else fp32 [default: its params.precision, auto]. The record says which one ran.",
            ),
            click.option(
                "--plugin",
                "plugins",
                multiple=True,
                metavar="MODULE",
                help="A module name or .py file registering outside measures (repeatable; beside the config's plugins:).",
            ),
        )
    ):
        fn = option(fn)
    return fn


def config_option(fn: F) -> F:
    return click.option(
        "--config",
        "config",
        metavar="NAME|PATH",
        help="A packaged config by name (svgscore configs) or a YAML file [default: default].",
    )(fn)


_PRECISION = "svgscore.clip.precision"


def _remember_precision(ctx: click.Context, _: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.meta[_PRECISION] = value


def scorer_kwargs(clip_weights: str | None, device: str | None, plugins: tuple[str, ...]) -> dict[str, Any]:
    """The Scorer keyword arguments of :func:`scorer_options` (``--precision`` comes from the
    running command's context)."""
    context = click.get_current_context(silent=True)
    precision = context.meta.get(_PRECISION) if context is not None else None
    clip = {k: v for k, v in (("weights", clip_weights), ("device", device), ("precision", precision)) if v is not None}
    return {"params": {"clip": clip} if clip else None, "plugins": plugins}
