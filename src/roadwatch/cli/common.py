import sys
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import typer
import uvloop

from roadwatch.errors import ConfigurationError, RoadwatchError
from roadwatch.infra.config import InfraConfig
from roadwatch.kafka.check import refusal
from roadwatch.runtime import garbage
from roadwatch.settings import Settings, load_settings

T = TypeVar("T")


def fail(error: RoadwatchError) -> typer.Exit:
    """Say what went wrong in one line, and exit 1."""
    print(f"roadwatch: {error}", file=sys.stderr)
    return typer.Exit(code=1)


def configuration_error(error: BaseException) -> ConfigurationError | None:
    """The ConfigurationError that `error` is, or holds (raised in a task group), if any;
    Kafka's refusals (an ACL missing) count as such."""
    if isinstance(error, ConfigurationError):
        return error
    refused = refusal(error)
    if refused is not None:
        return refused
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = configuration_error(inner)
            if found is not None:
                return found
    return None


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run a process's main coroutine on uvloop, as uvicorn runs the API's: the indexer
    stored 8-27% more a second on it than on asyncio's own loop, in interleaved runs."""
    garbage.settle()
    return uvloop.run(main)


def run_or_fail(main: Coroutine[Any, Any, None]) -> None:
    """Run a process's main coroutine; a configuration error or a Kafka refusal, even one
    raised inside a task group, ends it with one line and exit 1."""
    try:
        run(main)
    except Exception as error:
        found = configuration_error(error)
        if found is None:
            raise
        raise fail(found) from None


def local_settings() -> Settings:
    """The settings, with the local servers' own where none are set."""
    return load_settings(InfraConfig().home)


MetricsPort = Annotated[
    int, typer.Option(min=0, max=65535, help="Port for /metrics, /healthz, /readyz; 0: none.")
]
MetricsHost = Annotated[str, typer.Option(help="Address for the metrics port.")]
