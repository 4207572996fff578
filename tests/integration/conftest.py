from collections.abc import AsyncIterator

import pytest

from roadwatch.bootstrap import detection_store
from roadwatch.stores.base import DetectionStore
from tests.conftest import Servers, fresh_mongo_database_url, fresh_postgres_database


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
