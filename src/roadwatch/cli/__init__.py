"""The `roadwatch` command: one sub-command per process roadwatch runs.

Every process imports this package first, so the sub-commands' modules import little at their
top: each imports what its own process runs when it runs (`roadwatch indexer` loads no API).
"""

import typer

from roadwatch.cli import (
    api,
    deliver,
    indexer,
    infra,
    migrate,
    produce,
    status,
    topics,
    up,
    users,
)
from roadwatch.cli.common import fail
from roadwatch.errors import ConfigurationError
from roadwatch.infra.config import InfraConfig
from roadwatch.logs import configure_logging
from roadwatch.settings import load_settings

app = typer.Typer(
    help="roadwatch: index vehicle detections from Kafka, alert, and serve them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(infra.app, name="infra")
app.add_typer(users.app, name="users")
app.command("produce")(produce.produce)
app.command("indexer")(indexer.indexer)
app.command("api")(api.api)
app.command("deliver")(deliver.deliver)
app.command("up")(up.up)
app.command("migrate")(migrate.migrate)
app.command("topics")(topics.topics)
app.command("status")(status.status)


@app.callback()
def main() -> None:
    try:
        settings = load_settings(InfraConfig().home)
    except ConfigurationError as error:
        raise fail(error) from None
    configure_logging(settings.log_level, settings.log_format)
