import asyncio

import typer

from roadwatch.cli.common import fail, local_settings
from roadwatch.errors import RoadwatchError


def migrate() -> None:
    """Apply the database migrations, as MIGRATIONS_DB_URL (the tables' owner) if it is set."""
    from roadwatch.store_backends import backend_for
    from roadwatch.stores.migrate import migrate_schemas

    settings = local_settings()
    owner = settings.migrations_db_url
    detections = settings.detections_db_url
    migrated = backend_for(detections).migrated
    try:
        done = asyncio.run(
            migrate_schemas(
                users_url=owner or settings.users_db_url,
                detections_url=(owner or detections) if migrated else None,
            )
        )
    except RoadwatchError as error:
        raise fail(error) from None
    for name in done:
        typer.echo(f"{name}: up to date")
