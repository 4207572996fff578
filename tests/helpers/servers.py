"""Where the local servers answer, and fresh, isolated resources on them: databases and
topics no other test (or benchmark) uses."""

import asyncio
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from pymongo import AsyncMongoClient

from roadwatch.infra.config import InfraConfig
from roadwatch.infra.ferretdb import FerretDBService
from roadwatch.infra.postgres import PostgresService
from roadwatch.infra.stack import Infrastructure
from roadwatch.kafka.topics import TopicSpec, create_missing_topics
from roadwatch.settings import Settings
from tests.helpers.ports import free_port

# Every name made here carries its process's mark: what one test session (one xdist worker)
# made is removed at its end, and nothing that another session, run beside it, still uses.
SESSION_MARK = uuid.uuid4().hex[:6]


_MADE_HERE = re.compile(rf"[._]{SESSION_MARK}[0-9a-f]{{10}}$")


def unique(prefix: str) -> str:
    return f"{prefix}_{SESSION_MARK}{uuid.uuid4().hex[:10]}"


def made_by_this_session(name: str) -> bool:
    """Whether `unique` made this name (a topic's has dots for underscores) in this process."""
    return _MADE_HERE.search(name) is not None


@dataclass(frozen=True)
class Servers:
    """Where the local servers answer, as `roadwatch infra up` reports them."""

    kafka: str
    postgres_url: str
    mongo_url: str
    settings: Settings
    infrastructure: Infrastructure


class HasPostgres(Protocol):
    @property
    def postgres_url(self) -> str: ...


@asynccontextmanager
async def fresh_postgres_database(servers: HasPostgres) -> AsyncIterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    name = unique("test")
    admin = await asyncpg.connect(servers.postgres_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    base = servers.postgres_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()


@asynccontextmanager
async def own_postgres(home: Path) -> AsyncIterator[PostgresService]:
    """A PostgreSQL server of the test's own, under `home`, for a test that stops and
    starts it; removed afterwards."""
    database = PostgresService(InfraConfig(home=home, postgres_port=free_port()))
    await database.up()
    try:
        yield database
    finally:
        database.down()
        shutil.rmtree((home / "postgres").resolve(), ignore_errors=True)


@asynccontextmanager
async def own_ferretdb(home: Path, postgres: PostgresService) -> AsyncIterator[FerretDBService]:
    """A FerretDB of the test's own, over `postgres` (from own_postgres, under the same
    `home`), for a test that takes its database away; stopped afterwards."""
    config = InfraConfig(
        home=home,
        postgres_port=postgres.config.postgres_port,
        ferretdb_port=free_port(),
        ferretdb_debug_port=free_port(),
        ferretdb_tls_port=free_port(),
    )
    ferretdb = FerretDBService(config, postgres=postgres)
    await ferretdb.up()
    try:
        yield ferretdb
    finally:
        ferretdb.down()
        shutil.rmtree((home / "ferretdb").resolve(), ignore_errors=True)


def fresh_mongo_database_url(servers: Servers) -> str:
    """The URL of a MongoDB database no other test uses."""
    return servers.mongo_url.rsplit("/", 1)[0] + "/" + unique("test")


async def create_topic(
    bootstrap: str, partitions: int = 1, config: dict[str, str] | None = None
) -> str:
    name = unique("test.topic").replace("_", ".")
    await create_missing_topics(
        {"bootstrap_servers": bootstrap}, [TopicSpec(name, partitions, config or {})]
    )
    return name


async def remove_session_topics(bootstrap: str) -> int:
    """Delete the topics this session made; how many. A broker left with every test's
    topics ran out of heap after a few runs of the suite."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        ours = [topic for topic in await admin.list_topics() if made_by_this_session(topic)]
        for first in range(0, len(ours), 100):
            await admin.delete_topics(ours[first : first + 100])
    finally:
        await admin.close()
    return len(ours)


async def remove_session_mongo_databases(mongo_url: str) -> int:
    """Drop the MongoDB databases this session made; how many."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
    try:
        ours = [name for name in await client.list_database_names() if made_by_this_session(name)]
        await asyncio.gather(*(client.drop_database(name) for name in ours))
    finally:
        await client.close()
    return len(ours)
