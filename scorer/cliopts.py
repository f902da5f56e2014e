"""Options every scoring command shares (score, validate, calibrate, serve), defined once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def scorer_options(fn: F) -> F:
    """``--clip-weights``, ``--device`` and ``--plugin``: they reach the :class:`~scorer.Scorer`
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


def scorer_kwargs(clip_weights: str | None, device: str | None, plugins: tuple[str, ...]) -> dict[str, Any]:
    clip = {k: v for k, v in (("weights", clip_weights), ("device", device)) if v is not None}
    return {"params": {"clip": clip} if clip else None, "plugins": plugins}
