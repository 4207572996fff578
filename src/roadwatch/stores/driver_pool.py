"""Statements straight on asyncpg's pool, for the paths that run on every request.

SQLAlchemy's engine costs a few hundred microseconds of Python around each statement (the
AsyncConnection, greenlets, result rows, a pre-ping round trip); on the API's hottest
requests that was most of their time. Here a statement costs asyncpg's own work alone.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from roadwatch.stores.detection_store import StoreBusy, StoreUnreachable
from roadwatch.stores.sql import UNREACHABLE, postgres_location
from roadwatch.stores.vanished_hosts import on_new_connection

# The server went away under the connection (a restart, a failover, an administrator's
# pg_terminate_backend): the statement never ran, or ran to no effect for a read.
# InternalClientError is the statement begun between the server's last message and its
# close: asyncpg takes that message, unasked for, as a protocol error and leaves the
# connection mid-operation ("cannot switch to state 12; another operation (2) is in
# progress") until the close arrives.
CONNECTION_LOST: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
)


async def _keep_session(_connection: asyncpg.Connection) -> None:
    """In place of asyncpg's reset on release, a round trip (RESET ALL, UNLISTEN *…) that
    cost as much as the read before it: the statements run here change no session state.
    (An open transaction is still rolled back by the pool itself.)"""


class DriverPool:
    """A pool of asyncpg connections with the API's bounds: a connection is waited for and a
    statement runs no longer than `query_timeout`, and either overrun raises StoreBusy.

    Connections are not pinged before use. A read that finds its connection dead (the
    database restarted) is run once more on a fresh one, so a restart costs no reader an
    error; every idle connection, likely dead too, is replaced on its next use.
    """

    def __init__(self, url: str, *, size: int = 10, query_timeout: float | None = None) -> None:
        self._url = f"postgresql://{postgres_location(url)}"
        self._size = size
        self._query_timeout = query_timeout
        # The server cancels a statement at query_timeout; this bounds the wait for a server
        # that no longer answers at all (a host gone without closing its connections).
        self._answer_timeout = None if query_timeout is None else query_timeout + 1
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        settings = {}
        if self._query_timeout is not None:
            settings["statement_timeout"] = str(int(self._query_timeout * 1000))
        # Connections open on first use, not all at once: a process that never reads
        # detections (the indexer) holds none of them.
        self._pool = await asyncpg.create_pool(
            self._url,
            min_size=0,
            max_size=self._size,
            server_settings=settings,
            reset=_keep_session,
            init=on_new_connection,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the store is not open")
        return self._pool

    @asynccontextmanager
    async def connection(self, deadline: float | None = None) -> AsyncIterator[PoolConnectionProxy]:
        """A connection of the pool, waited for no longer than `query_timeout` nor past the
        `deadline` of the read it serves. Timeouts come out as StoreBusy, and a database
        that refuses connections as StoreUnreachable; a connection lost midway stays what
        asyncpg raised (CONNECTION_LOST), for the caller to retry or not."""
        try:
            # Bounded here rather than by acquire(timeout=…), which runs each wait as a task
            # of its own: a tenth of a short read's time.
            async with asyncio.timeout(_sooner(self._query_timeout, _left(deadline))):
                connection = await self.pool.acquire()
        except TimeoutError:
            raise StoreBusy("no database connection was free in time") from None
        except UNREACHABLE as error:
            raise StoreUnreachable("the database cannot be reached", cause=error) from None
        try:
            yield connection
        except (TimeoutError, asyncpg.QueryCanceledError):
            raise StoreBusy("the query took longer than allowed") from None
        finally:
            await self.pool.release(connection)

    def deadline(self) -> float | None:
        """When a read of several statements begun now must be done (time.monotonic()), so
        that `query_timeout` bounds it as a whole: None if unbounded."""
        return None if self._query_timeout is None else time.monotonic() + self._query_timeout

    async def fetch(
        self, query: str, *args: Any, deadline: float | None = None
    ) -> list[asyncpg.Record]:
        """The rows of a read; given a `deadline` (see deadline()), StoreBusy past it, the
        wait for a connection included."""
        for attempt in (1, 2):
            try:
                async with self.connection(deadline) as connection:
                    rows: list[asyncpg.Record] = await connection.fetch(
                        query, *args, timeout=_sooner(self._answer_timeout, _left(deadline))
                    )
                    return rows
            except CONNECTION_LOST as error:
                if attempt == 2:
                    raise StoreUnreachable(
                        "the database connection was lost", cause=error
                    ) from None
                await self.pool.expire_connections()
        raise AssertionError("unreachable")

    async def fetchval(self, query: str, *args: Any, deadline: float | None = None) -> Any:
        """The first column of the first row of a read."""
        rows = await self.fetch(query, *args, deadline=deadline)
        return rows[0][0] if rows else None


def _left(deadline: float | None) -> float | None:
    """The time left before `deadline` (time.monotonic()); StoreBusy if none is."""
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise StoreBusy("the read took longer than allowed")
    return left


def _sooner(first: float | None, second: float | None) -> float | None:
    """The shorter of two timeouts, None being none."""
    if first is None or second is None:
        return second if first is None else first
    return min(first, second)
