"""A database host gone without a word (a dead route, a failed host): roadwatch's write to it
fails within about half a minute, and is retried, where it used to wait until the kernel
gave up on the connection, a quarter of an hour later (stores/vanished_hosts.py for
PostgreSQL; PyMongo's own server monitor for MongoDB)."""

import asyncio
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import pytest

from roadwatch.bootstrap.stores import detection_store
from roadwatch.stores.driver_pool import DriverPool
from roadwatch.stores.vanished_hosts import KEEPALIVE_IDLE, UNACKNOWLEDGED_MS
from tests.helpers.factories import make_detection
from tests.helpers.servers import Servers, fresh_mongo_database_url, fresh_postgres_database
from tests.helpers.vanishing_route import VanishingRoute, can_make_namespaces, vanishing_route

# The longest a write may take to fail once the host is gone: the time its data may go
# unacknowledged, and a margin for a machine busy with other tests.
FAILS_WITHIN = UNACKNOWLEDGED_MS / 1000 + 20
# PyMongo checks each server every 10 s on a connection of its own; a check unanswered for
# connectTimeoutMS (20 s unless the URL says otherwise) marks the server unknown and
# cancels the operations in flight on it.
MONGO_FAILS_WITHIN = 10 + 20 + 20
needs_namespaces = pytest.mark.skipif(
    not can_make_namespaces(), reason="needs network namespaces (root)"
)


def _through(url: str, route: VanishingRoute) -> str:
    """`url`, reaching its server over the route. The server's certificate names 127.0.0.1,
    not the route's address: it is checked against the authority, not the name."""
    parts = urlsplit(url)
    credentials = f"{parts.username}:{parts.password}@" if parts.username else ""
    location = f"{credentials}{route.host}:{route.port}"
    query = parts.query.replace("sslmode=verify-full", "sslmode=verify-ca")
    return parts._replace(netloc=location, query=query).geturl()


def _server(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


async def _write_as_the_route_vanishes(
    url: str, route: VanishingRoute, *, within: float
) -> tuple[BaseException, float]:
    """What a save over the route raised once the route was cut, and how long it took. The
    same batch is then saved again with the route back, as the indexer retries it, and must
    be stored once however much of the unanswered write reached the server."""
    store = detection_store(_through(url, route))
    await store.open()
    try:
        await store.save([make_detection()])
        route.cut()
        started = time.monotonic()
        unanswered = make_detection()
        with pytest.raises(Exception) as raised:  # noqa: PT011 - whatever the driver says
            async with asyncio.timeout(within):
                await store.save([unanswered])
        took = time.monotonic() - started
        route.restore()
        await store.save([unanswered])
        assert sum((await store.count_by_make()).values()) == 2
    finally:
        # The store's other connections close over the route, as they would.
        route.restore()
        await store.close()
    assert not isinstance(raised.value, TimeoutError), f"the write still waited after {within} s"
    return raised.value, took


@pytest.mark.postgres
@needs_namespaces
async def test_a_write_to_a_vanished_host_fails_rather_than_waiting(servers: Servers) -> None:
    async with (
        fresh_postgres_database(servers) as url,
        vanishing_route(_server(url)) as route,
    ):
        error, took = await _write_as_the_route_vanishes(url, route, within=FAILS_WITHIN)
    assert took > KEEPALIVE_IDLE / 2, f"failed at once ({error!r}), not for the route"


@pytest.mark.mongo
@needs_namespaces
async def test_a_write_to_a_vanished_mongodb_host_fails_rather_than_waiting(
    servers: Servers,
) -> None:
    url = fresh_mongo_database_url(servers)
    async with vanishing_route(_server(url)) as route:
        error, took = await _write_as_the_route_vanishes(url, route, within=MONGO_FAILS_WITHIN)
    assert took > 5, f"failed at once ({error!r}), not for the route"


@pytest.mark.postgres
async def test_the_pool_of_reads_gives_up_on_a_vanished_host_as_well(servers: Servers) -> None:
    pool = DriverPool(servers.postgres_url)
    await pool.open()
    try:
        async with pool.connection() as connection:
            # The proxy's connection, and its transport: asyncpg's own attributes.
            raw: Any = getattr(connection, "_con")  # noqa: B009 - not in its stubs
            sock = raw._transport.get_extra_info("socket")
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) != 0
            user_timeout = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT)
            assert user_timeout == UNACKNOWLEDGED_MS
    finally:
        await pool.close()
