import asyncio
import os
import sys
from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer

from roadwatch.cli.common import fail
from roadwatch.errors import RoadwatchError
from roadwatch.infra.config import InfraConfig
from roadwatch.settings import Settings, load_settings
from roadwatch.shutdown import stop_on_signals
from roadwatch.supervisor import Program, Supervisor

if TYPE_CHECKING:
    from roadwatch.infra.service import Service
    from roadwatch.infra.stack import Infrastructure
    from roadwatch.status.gather import Endpoints

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
StatusEvery = Annotated[
    float,
    typer.Option(
        min=0, max=3600, help="Seconds between status lines (0: none); as `roadwatch status`."
    ),
]
Verbose = Annotated[
    bool,
    typer.Option(
        "--verbose", help="Every process's INFO logs too (otherwise warnings and errors only)."
    ),
]


def up(
    port: Port = 8000,
    metrics_port: MetricsPort = INDEXER_METRICS_PORT,
    deliver_metrics_port: DeliverMetricsPort = DELIVER_METRICS_PORT,
    no_producer: NoProducer = False,
    status_every: StatusEvery = 15.0,
    verbose: Verbose = False,
) -> None:
    """Start the local servers that the settings name (servers elsewhere are only checked),
    then the indexer, the API, the webhook deliverer and the producer, until Ctrl-C."""
    config = InfraConfig()
    try:
        code = asyncio.run(
            _up(
                config,
                port=port,
                metrics_port=metrics_port,
                deliver_metrics_port=deliver_metrics_port,
                producer=not no_producer,
                status_every=status_every,
                verbose=verbose,
            )
        )
    except RoadwatchError as error:
        raise fail(error) from None
    raise typer.Exit(code=code)


def _local_services(settings: Settings, infrastructure: "Infrastructure") -> list[str]:
    """The local servers that the settings name: those `up` starts. A server named in the
    environment, elsewhere, is the deployment's own, and only checked."""
    if not infrastructure.config.provision:
        return []
    # What the environment sets, as opposed to the defaults and what `infra up` wrote.
    given = Settings(_env_file=None).model_fields_set

    def local(field: str, address: str, *, scheme: str = "postgres") -> bool:
        value: str = getattr(settings, field)
        if field == "kafka_broker_url":
            named = {server.strip() for server in value.split(",")} == set(address.split(","))
            return field not in given or named
        if not value.startswith(scheme):
            return False
        return field not in given or urlsplit(value).netloc.rpartition("@")[2] == address

    databases = ("users_db_url", "detections_db_url")
    wanted = {
        "kafka": local("kafka_broker_url", infrastructure.kafka.bootstrap),
        "postgres": any(local(f, infrastructure.postgres.address) for f in databases),
        "ferretdb": local("detections_db_url", infrastructure.ferretdb.address, scheme="mongodb"),
    }
    return [name for name, needed in wanted.items() if needed]


async def _up(
    config: InfraConfig,
    *,
    port: int,
    metrics_port: int,
    deliver_metrics_port: int,
    producer: bool,
    status_every: float,
    verbose: bool,
) -> int:
    from roadwatch.infra.stack import Infrastructure
    from roadwatch.server_checks import server_problems
    from roadwatch.status.gather import Endpoints
    from roadwatch.webhooks.deliverer import stop_grace

    # The supervisor gives each process its own grace, and then kills it.
    stop = stop_on_signals(grace=None)
    settings = load_settings(config.home)
    infrastructure = Infrastructure(config, settings)
    already_running = {s.name for s in infrastructure.services if s.daemon.is_running()}
    local = _local_services(settings, infrastructure)
    if local:
        await infrastructure.up(local)
    started_here = [
        s
        for s in infrastructure.services
        if s.daemon.is_running() and s.name not in already_running
    ]
    # Read again: `infra up` has written where the servers it started answer.
    settings = load_settings(config.home)
    problems = await server_problems(settings)
    if problems:
        for problem in problems:
            print(f"roadwatch: {problem}", file=sys.stderr, flush=True)
        _stop(started_here)
        return 1
    roadwatch = [sys.executable, "-m", "roadwatch"]
    programs = [
        Program("indexer", [*roadwatch, "indexer", "--metrics-port", str(metrics_port)]),
        Program("api", [*roadwatch, "api", "--port", str(port)]),
        Program("deliver", [*roadwatch, "deliver", "--metrics-port", str(deliver_metrics_port)]),
    ]
    if producer:
        programs.append(Program("producer", [*roadwatch, "produce"]))
    supervisor = Supervisor(programs, env=_quiet_unless(verbose))
    await supervisor.start()
    store = settings.detections_db_url.split("://", 1)[0]
    print(
        f"\nroadwatch is up, storing detections in {store}.\n"
        f"  dashboard  http://127.0.0.1:{port}/\n"
        f"  API docs   http://127.0.0.1:{port}/docs\n"
        f"  metrics    http://127.0.0.1:{port}/metrics (API), "
        f"http://127.0.0.1:{metrics_port}/metrics (indexer), "
        f"http://127.0.0.1:{deliver_metrics_port}/metrics (webhooks)\n"
        "  status     `roadwatch status` (or `make status`)"
        + (f"; a line here every {status_every:.0f} s\n" if status_every else "\n")
        + "  first visit: while there is no user, the API prints a one-time link that creates\n"
        "  the administrator (or run `roadwatch users create --admin NAME`). Ctrl-C stops\n"
        "  everything started here.\n",
        flush=True,
    )
    endpoints = Endpoints.local(api=port, indexer=metrics_port, deliver=deliver_metrics_port)
    reporting = asyncio.create_task(_report(supervisor, settings, endpoints, every=status_every))
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
    reporting.cancel()
    # Longer than any of them takes to stop (the deliverer's grace, at least the 15 s the
    # others have, is the longest), so that each says what held it up before it is killed.
    await supervisor.stop(grace=stop_grace(settings.webhook_timeout) + 5)
    _stop(started_here)
    return code


def _quiet_unless(verbose: bool) -> dict[str, str] | None:
    """The processes' environment: their logs at WARNING, unless asked otherwise. Their
    progress is in the status lines instead."""
    if verbose or "LOG_LEVEL" in os.environ:
        return None
    return {**os.environ, "LOG_LEVEL": "WARNING"}


async def _report(
    supervisor: Supervisor, settings: Settings, endpoints: "Endpoints", *, every: float
) -> None:
    """One status line every `every` seconds, for the whole system, the first once the
    processes have had that long to start."""
    from roadwatch.kafka.clients import kafka_options
    from roadwatch.runtime.retry import every as periodically
    from roadwatch.status.gather import snapshot
    from roadwatch.status.render import summary

    async def line() -> None:
        supervisor.say(
            "status", summary(await snapshot(settings, endpoints, kafka_options(settings)))
        )

    if every:
        await asyncio.sleep(every)
        await periodically(every, line, what="reading the status")


def _stop(services: list["Service"]) -> None:
    for service in reversed(services):
        service.down()
        print(f"{service.name}: stopped", flush=True)
