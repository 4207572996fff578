import asyncio
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from roadwatch.bootstrap.stores import detection_store
from roadwatch.infra.config import InfraConfig
from roadwatch.infra.stack import Infrastructure
from roadwatch.settings import load_settings
from roadwatch.stores.detection_store import DetectionStore
from tests.helpers.servers import (
    Servers,
    fresh_mongo_database_url,
    fresh_postgres_database,
    remove_session_mongo_databases,
    remove_session_topics,
)

# The machine is shared with the servers under test: how long an example takes says nothing.
# `ci` (HYPOTHESIS_PROFILE=ci, set by .ci/run) also draws the same examples every run.
hypothesis_settings.register_profile(
    "dev", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.register_profile(
    "ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules with the most slow tests first, keeping the order otherwise: `make test`
    gives each module whole to one worker, and a long module taken last would end the run
    alone while the other workers stand idle."""
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(key=lambda item: -slow[item.path])


# The server each marker stands for: a run starts only the servers its selected tests need,
# so `pytest -m "not kafka"` starts no broker, and `make test-unit` no server at all.
SERVICE_OF_MARKER = {"kafka": "kafka", "postgres": "postgres", "mongo": "ferretdb"}


@pytest.fixture(scope="session")
async def servers(request: pytest.FixtureRequest) -> AsyncIterator[Servers]:
    config = InfraConfig()
    settings = load_settings(config.home)
    infrastructure = Infrastructure(config, settings)
    marked = {marker.name for item in request.session.items for marker in item.iter_markers()}
    await infrastructure.up(
        [service for marker, service in SERVICE_OF_MARKER.items() if marker in marked],
        report=lambda _line: None,
    )
    env = infrastructure.connection_settings()
    servers = Servers(
        kafka=env["KAFKA_BROKER_URL"],
        postgres_url=env["POSTGRES_URL"],
        mongo_url=env["MONGO_URL"],
        settings=load_settings(config.home),
        infrastructure=infrastructure,
    )
    yield servers
    # What the session made is removed with it; its PostgreSQL databases already were.
    async with asyncio.timeout(120):
        if "kafka" in marked:
            await remove_session_topics(servers.kafka)
        if "mongo" in marked:
            await remove_session_mongo_databases(servers.mongo_url)


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


@pytest.fixture(scope="session", autouse=True)
async def _every_task_ends() -> AsyncIterator[None]:
    """What the tests left running is cancelled at the end of the session, and must end: a
    task that refuses would hang the closing event loop with nothing to say which it is."""
    yield
    me = asyncio.current_task()
    left = [task for task in asyncio.all_tasks() if task is not me]
    for task in left:
        task.cancel()
    stuck = (await asyncio.wait(left, timeout=30))[1] if left else set()
    for task in stuck:
        task.print_stack(file=sys.stderr)
    if stuck:
        pytest.fail(f"tasks that would not end when cancelled: {[t.get_coro() for t in stuck]}")
