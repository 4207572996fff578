from collections.abc import AsyncIterator

import pytest

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
