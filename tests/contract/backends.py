"""The two sides of a contract: a store over a fresh PostgreSQL database, and its fake."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol, TypeVar

import pytest

from tests.helpers.servers import HasPostgres, fresh_postgres_database

# A contract suite's fixture takes these params: each test runs against both sides.
BOTH = [pytest.param("postgres", marks=pytest.mark.postgres), pytest.param("memory")]


class Opened(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...


Real = TypeVar("Real", bound=Opened)
Fake = TypeVar("Fake")


@asynccontextmanager
async def under_contract(
    side: str, servers: HasPostgres, *, real: Callable[[str], Real], fake: Callable[[], Fake]
) -> AsyncIterator[Real | Fake]:
    """The fake, or the real store opened over a database of its own and closed after."""
    if side == "memory":
        yield fake()
        return
    async with fresh_postgres_database(servers) as url:
        store = real(url)
        await store.open()
        try:
            yield store
        finally:
            await store.close()
