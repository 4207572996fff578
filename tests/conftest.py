import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from roadwatch.bootstrap import detection_store
from roadwatch.infra.config import InfraConfig
from roadwatch.infra.stack import Infrastructure
from roadwatch.kafka_topics import TopicSpec, create_missing_topics
from roadwatch.settings import Settings, load_settings
from roadwatch.stores.base import DetectionStore

# The machine is shared with the servers under test: how long an example takes says nothing.
# `ci` (HYPOTHESIS_PROFILE=ci, set by .ci/run) also draws the same examples every run.
hypothesis_settings.register_profile(
    "dev", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@dataclass(frozen=True)
class Servers:
    """Where the local servers answer, as `roadwatch infra up` reports them."""

    kafka: str
    postgres_url: str
    mongo_url: str
    settings: Settings
    infrastructure: Infrastructure


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
async def servers() -> Servers:
    config = InfraConfig()
    settings = load_settings(config.home)
    infrastructure = Infrastructure(config, settings)
    await infrastructure.up(report=lambda _line: None)
    env = infrastructure.connection_settings()
    return Servers(
        kafka=env["KAFKA_BROKER_URL"],
        postgres_url=env["POSTGRES_URL"],
        mongo_url=env["MONGO_URL"],
        settings=load_settings(config.home),
        infrastructure=infrastructure,
    )


@asynccontextmanager
async def fresh_postgres_database(servers: Servers) -> AsyncIterator[str]:
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


def fresh_mongo_database_url(servers: Servers) -> str:
    """The URL of a MongoDB database no other test uses."""
    return servers.mongo_url.rsplit("/", 1)[0] + "/" + unique("test")


@pytest.fixture(
    params=[
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("mongo", marks=pytest.mark.mongo),
    ]
)
async def store_url(request: pytest.FixtureRequest, servers: Servers) -> AsyncIterator[str]:
    """A fresh, empty detection database, on each backend in turn."""
    if request.param == "postgres":
        async with fresh_postgres_database(servers) as url:
            yield url
    else:
        yield fresh_mongo_database_url(servers)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[DetectionStore]:
    """A store opened on that database."""
    store = detection_store(store_url)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def postgres_database(servers: Servers) -> AsyncIterator[str]:
    async with fresh_postgres_database(servers) as url:
        yield url


@pytest.fixture
def mongo_database_url(servers: Servers) -> str:
    return fresh_mongo_database_url(servers)


async def create_topic(
    bootstrap: str, partitions: int = 1, config: dict[str, str] | None = None
) -> str:
    name = unique("test.topic").replace("_", ".")
    await create_missing_topics(bootstrap, [TopicSpec(name, partitions, config or {})])
    return name
