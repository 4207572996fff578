import asyncio
import json
import sys
from typing import Annotated

import typer

from roadwatch.cli.common import fail
from roadwatch.cli.up import DELIVER_METRICS_PORT, INDEXER_METRICS_PORT
from roadwatch.errors import RoadwatchError
from roadwatch.infra.config import InfraConfig
from roadwatch.settings import load_settings

AsJson = Annotated[bool, typer.Option("--json", help="One JSON object, for machines.")]
Window = Annotated[
    float, typer.Option(min=0.5, max=60, help="Seconds over which rates are measured.")
]
Port = Annotated[int, typer.Option(min=1, max=65535, help="The API's port.")]
IndexerPort = Annotated[
    int, typer.Option(min=1, max=65535, help="The indexer's /metrics and health port.")
]
DeliverPort = Annotated[
    int, typer.Option(min=1, max=65535, help="The webhook deliverer's /metrics and health port.")
]


def status(
    as_json: AsJson = False,
    window: Window = 2.0,
    port: Port = 8000,
    metrics_port: IndexerPort = INDEXER_METRICS_PORT,
    deliver_metrics_port: DeliverPort = DELIVER_METRICS_PORT,
) -> None:
    """How the whole system goes: each server and process, lag, rates, alerts, dead letters
    and webhooks. Exits 1 if anything is not ready."""
    from rich.console import Console

    from roadwatch.kafka.clients import kafka_options
    from roadwatch.status.gather import Endpoints, snapshot
    from roadwatch.status.render import show

    try:
        settings = load_settings(InfraConfig().home)
        endpoints = Endpoints.local(api=port, indexer=metrics_port, deliver=deliver_metrics_port)
        found = asyncio.run(snapshot(settings, endpoints, kafka_options(settings), window=window))
    except RoadwatchError as error:
        raise fail(error) from None
    if as_json:
        sys.stdout.write(json.dumps(found.to_json(), indent=2) + "\n")
    else:
        show(found, Console())
    raise typer.Exit(code=0 if found.ready else 1)
