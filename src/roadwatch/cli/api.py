import asyncio
import os
import secrets
import tempfile
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import SecretStr

from roadwatch.cli.common import fail, local_settings
from roadwatch.errors import ConfigurationError
from roadwatch.logs import configure_logging
from roadwatch.prometheus import MULTIPROCESS_FOLDER
from roadwatch.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

# How many workers there are, for each of them to know (uvicorn's own name for it).
WORKERS = "WEB_CONCURRENCY"
SETUP_TOKEN = "SETUP_TOKEN"  # noqa: S105 - the variable's name, not a token

Host = Annotated[str, typer.Option(help="Address to listen on.")]
Port = Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")]
Workers = Annotated[
    int,
    typer.Option(
        min=1,
        max=64,
        envvar=WORKERS,
        help="Processes sharing the port, each with its own alert feed; /metrics sums them.",
    ),
]


def api(host: Host = "127.0.0.1", port: Port = 8000, workers: Workers = 1) -> None:
    """Serve the Detections API (and the dashboard) with uvicorn."""
    import uvicorn

    from roadwatch.bootstrap.api import api_app, api_topics, awaiting_first_user
    from roadwatch.bootstrap.clients import DependencyUnavailable, kafka_checked

    settings = with_setup_token(local_settings())
    try:
        # Built here even when workers build their own: a setting unfit to serve with, or a
        # Kafka that refuses this client, is said once, in one line, before any worker starts.
        app = api_app(settings)
        asyncio.run(kafka_checked(settings, topics=api_topics(settings), patience=60))
        first_user_awaited = asyncio.run(awaiting_first_user(settings))
    except (ConfigurationError, DependencyUnavailable) as error:
        raise fail(error) from None
    if first_user_awaited:
        assert settings.setup_token is not None
        print(setup_link(host, port, settings.setup_token.get_secret_value()), flush=True)
    proxies = [p.strip() for p in settings.trusted_proxies.split(",") if p.strip()]
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "log_config": None,
        # A client's address is the peer's, unless the peer is a proxy named as trusted.
        "proxy_headers": bool(proxies),
        "forwarded_allow_ips": proxies or None,
        "timeout_graceful_shutdown": 5,
    }
    if workers == 1:
        uvicorn.run(app, **options)
        return
    # The workers' metrics go to files in this folder, which /metrics in any worker sums.
    with tempfile.TemporaryDirectory(prefix="roadwatch-api-metrics-") as folder:
        os.environ[MULTIPROCESS_FOLDER] = folder
        os.environ[WORKERS] = str(workers)
        uvicorn.run(
            "roadwatch.cli.api:worker_app",
            factory=True,
            workers=workers,
            **options,
        )


def with_setup_token(settings: Settings) -> Settings:
    """The settings, with a setup token made for this run if none is set; the workers, and
    any process started from here, read it from the environment."""
    if settings.setup_token is not None:
        return settings
    token = secrets.token_urlsafe(24)
    os.environ[SETUP_TOKEN] = token
    return settings.model_copy(update={"setup_token": SecretStr(token)})


def setup_link(host: str, port: int, token: str) -> str:
    """What the operator is told while the system has no user: as Jupyter prints its token,
    a link that carries it."""
    shown = "127.0.0.1" if host in {"0.0.0.0", "::", ""} else host  # noqa: S104
    if ":" in shown:
        shown = f"[{shown}]"
    return (
        "\nroadwatch has no user yet. To create its administrator, open\n"
        f"    http://{shown}:{port}/?setup={token}\n"
        "or run `roadwatch users create --admin NAME`. The link works once.\n"
    )


def worker_app() -> "FastAPI":
    """The app of one worker process (a process of its own, started afresh), from the same
    settings as the parent's, logging as it does."""
    from roadwatch.bootstrap.api import api_app

    settings = local_settings()
    configure_logging(settings.log_level, settings.log_format)
    return api_app(settings, processes=int(os.environ[WORKERS]))
