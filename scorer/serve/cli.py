"""``svgscore serve``: load the scorer once, warm it up, then answer HTTP on uvicorn."""

from __future__ import annotations

import os
import socket

import click

from ..cliopts import config_option, scorer_kwargs, scorer_options
from ..config import DEFAULT_PROMPT
from ..errors import UsageError
from ..integrations.rl import UNUSABLE_REWARD

_WARM_UP_SVG = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect width="6" height="6" fill="#234"/></svg>'


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0 for every one).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port; 0 picks a free one (printed).")
@config_option
@scorer_options
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Worker processes [default: CPU count].")
@click.option("--token-env", metavar="NAME", help="Require 'Authorization: Bearer <token>', the token read from this environment variable.")
@click.option("--max-body-mb", default=32.0, show_default=True, type=click.FloatRange(min=0, min_open=True), help="Largest request body.")
@click.option("--max-items", default=256, show_default=True, type=click.IntRange(min=1), help="Most SVGs (or reward queries) in one request.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1), help="Most items per scoring pass (micro-batch).")
@click.option("--max-wait-ms", default=20.0, show_default=True, type=click.FloatRange(min=0), help="How long a pass waits for more requests.")
@click.option("--unusable-reward", default=UNUSABLE_REWARD, show_default=True, type=float, help="/reward's value for a reply with no usable SVG.")
@click.option("--prompt", default=DEFAULT_PROMPT, show_default=True, help="Prompt for items and reward queries that bring none.")
def serve_command(
    host: str,
    port: int,
    config: str | None,
    clip_weights: str | None,
    device: str | None,
    plugins: tuple[str, ...],
    jobs: int | None,
    token_env: str | None,
    max_body_mb: float,
    max_items: int,
    batch_size: int,
    max_wait_ms: float,
    unusable_reward: float,
    prompt: str,
) -> None:
    """Serve scoring over HTTP (JSON), keeping the scorer and its models loaded.

    \b
    Endpoints: GET /health, GET /version, POST /score, POST /score/batch,
    POST /reward (OpenRLHF --remote_rm_url protocol; also /get_reward).
    Needs the serve extra: pip install 'svgscore[serve]'.
    """
    try:
        import uvicorn

        from .app import ServeSettings, create_app
    except ImportError as exc:
        raise click.UsageError(f"svgscore serve needs the serve extra ({exc.name} is missing): pip install 'svgscore[serve]'") from None
    from ..api import Scorer

    token = None
    if token_env:
        token = os.environ.get(token_env)
        if not token:
            raise click.UsageError(f"--token-env {token_env}: that environment variable is not set or empty")
    settings = ServeSettings(
        max_body_bytes=int(max_body_mb * (1 << 20)),
        max_items=max_items,
        max_batch=batch_size,
        max_wait_s=max_wait_ms / 1000,
        token=token,
        unusable_reward=unusable_reward,
        prompt=prompt,
    )
    try:
        with Scorer(config, jobs=jobs, **scorer_kwargs(clip_weights, device, plugins)) as scorer:
            # Start the workers and load the models now, so the first request is not the slow
            # one — and a config that cannot score (a required model missing) fails here, exit 2.
            scorer.score_svg(_WARM_UP_SVG)
            # Bound before uvicorn starts so --port 0 can be printed; connections made from
            # here on wait in the backlog until the app is serving.
            sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
            bound = sock.getsockname()[1]
            click.echo(f"svgscore serve: listening on http://{host}:{bound} (config {scorer.config_sha256[:12]})", err=True)
            config = uvicorn.Config(create_app(scorer, settings), log_level="info", lifespan="on", timeout_graceful_shutdown=10)
            uvicorn.Server(config).run(sockets=[sock])
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
