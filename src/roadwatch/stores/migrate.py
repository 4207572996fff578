"""Bringing every schema roadwatch keeps in PostgreSQL up to date, as the tables' owner."""

from roadwatch.stores.postgres import PostgresDetectionStore
from roadwatch.stores.sql import MigratedDatabase
from roadwatch.stores.users_postgres import PostgresUserStore


async def migrate_schemas(*, users_url: str, detections_url: str | None) -> list[str]:
    """Apply the migrations not applied yet; say what was brought up to date.

    `detections_url` is None when detections are not kept in PostgreSQL.
    """
    databases: list[tuple[str, MigratedDatabase]] = [("users", PostgresUserStore(users_url))]
    if detections_url is not None:
        databases.append(("detections", PostgresDetectionStore(detections_url)))
    for _name, database in databases:
        await database.open()
        await database.close()
    return [name for name, _database in databases]
