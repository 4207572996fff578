import asyncio
from typing import TYPE_CHECKING, Annotated

import typer

from roadwatch.cli.common import fail
from roadwatch.errors import ConfigurationError, RoadwatchError
from roadwatch.infra.config import SERVICE_NAMES, InfraConfig
from roadwatch.settings import load_settings

if TYPE_CHECKING:
    from roadwatch.infra.stack import Infrastructure

app = typer.Typer(help="The local Kafka, PostgreSQL and FerretDB servers.", no_args_is_help=True)


def _infrastructure(**config: object) -> "Infrastructure":
    from roadwatch.infra.stack import Infrastructure

    infra = InfraConfig(**config)  # type: ignore[arg-type]
    return Infrastructure(infra, load_settings(infra.home))


Services = Annotated[
    list[str] | None,
    typer.Option("--only", help=f"Start only these services ({', '.join(SERVICE_NAMES)})."),
]


KafkaBrokers = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=5,
        help="Kafka brokers to run (ROADWATCH_KAFKA_BROKERS): 3 makes a cluster whose topics "
        "keep three copies, two in sync. A state directory keeps its first size.",
    ),
]


@app.command("up")
def infra_up(only: Services = None, kafka_brokers: KafkaBrokers = None) -> None:
    """Provision and start the local servers, and return once each one answers."""
    names = only or list(SERVICE_NAMES)
    unknown = set(names) - set(SERVICE_NAMES)
    if unknown:
        raise typer.BadParameter(f"unknown service {sorted(unknown)}; choose from {SERVICE_NAMES}")
    config = {} if kafka_brokers is None else {"kafka_brokers": kafka_brokers}
    try:
        asyncio.run(_infrastructure(**config).up(names))
    except RoadwatchError as error:
        raise fail(error) from None


@app.command("down")
def infra_down() -> None:
    """Stop every local server that roadwatch started."""
    _infrastructure().down()


@app.command("status")
def infra_status() -> None:
    """Say which local servers run and whether they answer; exit 1 if any does not."""
    statuses = asyncio.run(_infrastructure().status())
    for status in statuses:
        pid = f"pid {status.pid}" if status.pid else "no process"
        print(f"{status.name:9} {status.address:16} {pid:12} {status.detail}")
    if not all(status.answering for status in statuses):
        raise typer.Exit(code=1)


KafkaUser = Annotated[
    str | None,
    typer.Option(
        help="Connect as this user of the secured listener (SASL_SSL), and to PostgreSQL "
        "over TLS checked in full."
    ),
]


@app.command("env")
def infra_env(kafka_user: KafkaUser = None) -> None:
    """Print the connection settings, one `NAME=value` a line, ready for `export`."""
    infrastructure = _infrastructure()
    settings = infrastructure.connection_settings()
    if kafka_user is not None:
        users = infrastructure.kafka.users()
        if kafka_user not in users:
            raise fail(ConfigurationError(f"no Kafka user {kafka_user!r}; choose from {users}"))
        settings = infrastructure.secured_settings(kafka_user)
    for key, value in settings.items():
        print(f"{key}={value}")
