"""A statement begun on a pooled connection whose end the server has just announced (a
shutdown, `pg_terminate_backend`, an idle session timeout): it is run again on a fresh
connection, as one on a connection already closed is, and never comes out as asyncpg's
"cannot switch to state …; another operation (2) is in progress".

asyncpg reads the server's last message as a protocol error, and closes the connection a
few turns of the event loop later; a statement begun between the two found it
mid-operation. Each test ends a session and then reads after 0 to 5 turns of the loop, so
that many of its reads land in that moment (over half of them did, before the fix)."""

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import text

from roadwatch.stores.driver_pool import DriverPool
from roadwatch.stores.sql import async_engine
from tests.helpers.servers import Servers

pytestmark = pytest.mark.postgres

ROUNDS = 60


@pytest.fixture
async def admin(servers: Servers) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(servers.postgres_url)
    try:
        yield connection
    finally:
        await connection.close()


async def _end(admin: asyncpg.Connection, pid: int, turns: int) -> None:
    """The server ends the session `pid`; then `turns` turns of the event loop go by."""
    assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
    for _ in range(turns):
        await asyncio.sleep(0)


async def test_a_read_on_a_connection_whose_end_was_announced_is_run_again(
    servers: Servers, admin: asyncpg.Connection
) -> None:
    pool = DriverPool(servers.postgres_url, size=1, query_timeout=10)
    await pool.open()
    try:
        for round_ in range(ROUNDS):
            pid = await pool.fetchval("SELECT pg_backend_pid()")
            await _end(admin, pid, round_ % 6)
            assert await pool.fetchval("SELECT pg_backend_pid()") != pid
    finally:
        await pool.close()


async def test_a_statement_on_an_engine_connection_whose_end_was_announced_is_run_again(
    servers: Servers, admin: asyncpg.Connection
) -> None:
    engine = async_engine(servers.postgres_url, pool_size=1, query_timeout=10)
    select_pid = text("SELECT pg_backend_pid()")
    try:
        for round_ in range(ROUNDS):
            async with engine.connect() as connection:
                pid = await connection.scalar(select_pid)
            await _end(admin, pid, round_ % 6)
            async with engine.connect() as connection:
                assert await connection.scalar(select_pid) != pid
    finally:
        await engine.dispose()
