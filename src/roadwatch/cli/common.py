import sys
from typing import Annotated

import typer

from roadwatch.errors import RoadwatchError
from roadwatch.infra.config import InfraConfig
from roadwatch.settings import Settings, load_settings


def fail(error: RoadwatchError) -> typer.Exit:
    """Say what went wrong in one line, and exit 1."""
    print(f"roadwatch: {error}", file=sys.stderr)
    return typer.Exit(code=1)


def settings() -> Settings:
    return load_settings(InfraConfig().home)


MetricsPort = Annotated[
    int, typer.Option(min=0, max=65535, help="Port for /metrics, /healthz, /readyz; 0: none.")
]
MetricsHost = Annotated[str, typer.Option(help="Address for the metrics port.")]
