"""A database that refuses a connection (at its connection limit here; a server starting up
is refused the same way), or resets it as it opens: both of the API's pools say it cannot
be reached, which the API answers with 503. SQLAlchemy's asyncpg adapter wraps the driver's
refusal in an error of its own, and a reset is an OSError that neither pool counted: each
had come out as a 500 on every request that authenticates."""

import asyncio
import socket
import struct
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import asyncpg
import pytest

from roadwatch.stores.detection_store import StoreUnreachable
from roadwatch.stores.driver_pool import DriverPool
from roadwatch.stores.users_postgres import PostgresUserStore
from tests.helpers.ports import free_port
from tests.helpers.relays import pipe
from tests.helpers.servers import Servers, fresh_postgres_database, unique

pytestmark = pytest.mark.postgres


@pytest.fixture
async def limited_role(servers: Servers) -> AsyncIterator[tuple[str, asyncpg.Connection]]:
    """A database owned by a role of its own, and an administrator's connection: the URL of
    that role there, and the connection that can change the role's connection limit."""
    role, password = unique("limited"), uuid.uuid4().hex
    try:
        async with fresh_postgres_database(servers) as url:
            admin = await asyncpg.connect(url)
            database = urlsplit(url).path.lstrip("/")
            await admin.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
            await admin.execute(f'ALTER DATABASE "{database}" OWNER TO "{role}"')
            parts = urlsplit(url)
            location = f"{role}:{password}@{parts.hostname}:{parts.port}"
            try:
                yield parts._replace(netloc=location).geturl(), admin
            finally:
                await admin.close()
    finally:
        # Once its database is gone, the role owns nothing.
        cleanup = await asyncpg.connect(servers.postgres_url)
        try:
            await cleanup.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await cleanup.close()


async def _both_pools_after(
    url: str, refusing: Callable[[], Awaitable[None]]
) -> list[StoreUnreachable]:
    """What a read through each pool raised, connecting anew once `refusing` has run."""
    users = PostgresUserStore(url, query_timeout=5)
    await users.open()
    reads = DriverPool(url, size=1, query_timeout=5)
    await reads.open()
    try:
        assert await users.get(uuid.uuid4()) is None
        await users.engine.dispose()
        await refusing()
        with pytest.raises(StoreUnreachable) as through_sqlalchemy:
            await users.get(uuid.uuid4())
        with pytest.raises(StoreUnreachable) as through_asyncpg:
            await reads.fetch("SELECT 1")
    finally:
        await reads.close()
        await users.close()
    refused = [through_sqlalchemy.value, through_asyncpg.value]
    assert [r.public for r in refused] == ["the database cannot be reached"] * 2
    return refused


async def test_a_connection_refused_at_the_limit_is_unreachable_to_either_pool(
    limited_role: tuple[str, asyncpg.Connection],
) -> None:
    url, admin = limited_role

    async def no_more_connections() -> None:
        await admin.execute(f'ALTER ROLE "{urlsplit(url).username}" CONNECTION LIMIT 0')

    for refused in await _both_pools_after(url, no_more_connections):
        assert "too many connections" in str(refused.cause)


class ResettingRelay:
    """A relay to PostgreSQL that, once `resetting`, resets each new connection as it comes
    (a server or a load balancer going down mid-handshake)."""

    def __init__(self, server: tuple[str, int]) -> None:
        self._server = server
        self.resetting = False
        self.port = free_port()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.resetting:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return
        server_reader, server_writer = await asyncio.open_connection(*self._server)
        await asyncio.gather(pipe(reader, server_writer), pipe(server_reader, writer))

    @asynccontextmanager
    async def running(self) -> AsyncIterator["ResettingRelay"]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        try:
            yield self
        finally:
            server.close()


async def test_a_connection_reset_as_it_opens_is_unreachable_to_either_pool(
    limited_role: tuple[str, asyncpg.Connection],
) -> None:
    parts = urlsplit(limited_role[0])
    assert parts.hostname is not None
    assert parts.port is not None
    async with ResettingRelay((parts.hostname, parts.port)).running() as relay:
        location = f"{parts.username}:{parts.password}@127.0.0.1:{relay.port}"

        async def resetting() -> None:
            relay.resetting = True

        for refused in await _both_pools_after(parts._replace(netloc=location).geturl(), resetting):
            assert "reset by peer" in str(refused.cause)
