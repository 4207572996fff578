import asyncio
import sys
from typing import Annotated

import typer

from roadwatch.cli.common import fail
from roadwatch.errors import RoadwatchError
from roadwatch.infra.config import InfraConfig
from roadwatch.infra.stack import Infrastructure
from roadwatch.settings import Settings, load_settings
from roadwatch.shutdown import stop_on_signals
from roadwatch.supervisor import Program, Supervisor

INDEXER_METRICS_PORT = 9400
DELIVER_METRICS_PORT = 9401

Port = Annotated[int, typer.Option(min=1, max=65535, help="The API's (and dashboard's) port.")]
MetricsPort = Annotated[
    int, typer.Option(min=1, max=65535, help="The indexer's /metrics and health port.")
]
DeliverMetricsPort = Annotated[
    int, typer.Option(min=1, max=65535, help="The webhook deliverer's /metrics and health port.")
]
NoProducer = Annotated[
    bool, typer.Option("--no-producer", help="Do not simulate cameras: index only what arrives.")
]


def up(
    port: Port = 8000,
    metrics_port: MetricsPort = INDEXER_METRICS_PORT,
    deliver_metrics_port: DeliverMetricsPort = DELIVER_METRICS_PORT,
    no_producer: NoProducer = False,
) -> None:
    """Start the local servers, then the indexer, the API and the producer, until Ctrl-C."""
    config = InfraConfig()
    try:
        code = asyncio.run(
            _up(
                config,
                port=port,
                metrics_port=metrics_port,
                deliver_metrics_port=deliver_metrics_port,
                producer=not no_producer,
            )
        )
    except RoadwatchError as error:
        raise fail(error) from None
    raise typer.Exit(code=code)


def _needed_services(settings: Settings) -> list[str]:
    services = ["postgres", "kafka"]
    if settings.detections_db_url.startswith("mongodb://"):
        services.append("ferretdb")
    return services


async def _up(
    config: InfraConfig,
    *,
    port: int,
    metrics_port: int,
    deliver_metrics_port: int,
    producer: bool,
) -> int:
    stop = stop_on_signals()
    settings = load_settings(config.home)
    infrastructure = Infrastructure(config, settings)
    already_running = {s.name for s in infrastructure.services if s.daemon.is_running()}
    await infrastructure.up(_needed_services(settings))
    started_here = [
        s
        for s in infrastructure.services
        if s.daemon.is_running() and s.name not in already_running
    ]
    roadwatch = [sys.executable, "-m", "roadwatch"]
    programs = [
        Program("indexer", [*roadwatch, "indexer", "--metrics-port", str(metrics_port)]),
        Program("api", [*roadwatch, "api", "--port", str(port)]),
        Program("deliver", [*roadwatch, "deliver", "--metrics-port", str(deliver_metrics_port)]),
    ]
    if producer:
        programs.append(Program("producer", [*roadwatch, "produce"]))
    supervisor = Supervisor(programs)
    await supervisor.start()
    store = settings.detections_db_url.split("://", 1)[0]
    print(
        f"\nroadwatch is up, storing detections in {store}.\n"
        f"  dashboard  http://127.0.0.1:{port}/\n"
        f"  API docs   http://127.0.0.1:{port}/docs\n"
        f"  metrics    http://127.0.0.1:{port}/metrics (API), "
        f"http://127.0.0.1:{metrics_port}/metrics (indexer), "
        f"http://127.0.0.1:{deliver_metrics_port}/metrics (webhooks)\n"
        "  first visit: create the administrator (POST /users needs no token while there is\n"
        "  no user), then log in with it. Ctrl-C stops everything started here.\n",
        flush=True,
    )
    ended = asyncio.create_task(supervisor.wait_for_first_exit())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({ended, stopping}, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if ended.done() and not stop.is_set():
        name, exit_code = ended.result()
        print(f"roadwatch: {name} exited with code {exit_code}; stopping the rest", flush=True)
        code = 1
    else:
        ended.cancel()
    await supervisor.stop()
    for service in reversed(started_here):
        service.down()
        print(f"{service.name}: stopped", flush=True)
    return code
