"""What the PostgreSQL-backed stores share: engines and controlled migrations."""

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

import asyncpg
import sqlalchemy.exc
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from roadwatch.errors import ConfigurationError
from roadwatch.rejections import RecordsRefused
from roadwatch.stores.detection_store import StoreBusy, StoreUnreachable
from roadwatch.stores.vanished_hosts import give_up_on_vanished_host

# One advisory lock for all roadwatch migrations, so that processes starting together wait
# for each other instead of racing to create the same tables.
MIGRATION_LOCK = 0x726F6164


QUERY_CANCELED = "57014"
# Raised, bare or wrapped by SQLAlchemy, when the server is not there to ask. OSError is
# any failure of the socket: refused, reset mid-handshake, no route, a name not resolved,
# no answer in time.
UNREACHABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
)
INSUFFICIENT_PRIVILEGE = "42501"
# Data exceptions, integrity violations, values beyond a limit: the rows are at fault.
REFUSED_SQLSTATE_CLASSES = {"22", "23", "54"}
# Deadlock and serialization failures roll the whole statement back: it is safe to run again.
ROLLED_BACK_SQLSTATES = {"40P01", "40001"}


def rolled_back(error: BaseException) -> bool:
    """Whether the statement failed as a whole, for a reason that running it again mends."""
    return isinstance(error, asyncpg.PostgresError) and error.sqlstate in ROLLED_BACK_SQLSTATES


def postgres_location(url: str) -> str:
    """What follows `scheme://` in a PostgreSQL URL; ValueError for any other URL."""
    scheme, rest = url.split("://", 1)
    if scheme not in {"postgresql", "postgres", "postgresql+asyncpg"}:
        raise ValueError(f"not a PostgreSQL URL: {scheme}://…")
    return rest


def async_engine(
    url: str, *, pool_size: int = 10, query_timeout: float | None = None
) -> AsyncEngine:
    """An engine over asyncpg. With `query_timeout`, every statement is cancelled by the
    server after that many seconds, and a connection is waited for no longer either."""
    dsn = f"postgresql://{postgres_location(url)}"
    server_settings: dict[str, str] = {}
    bounded: dict[str, Any] = {}
    if query_timeout is not None:
        server_settings["statement_timeout"] = str(int(query_timeout * 1000))
        bounded = {"pool_timeout": query_timeout}

    async def connect() -> asyncpg.Connection:
        # asyncpg reads the URL itself, as libpq would: sslmode, sslrootcert and the rest
        # of its parameters, which SQLAlchemy would pass on as unknown keywords.
        try:
            connection = await asyncpg.connect(dsn, server_settings=server_settings)
        except UNREACHABLE as error:
            # Named here, where only connecting can have raised it: around a block of
            # statements, an OSError may be the block's own (a broker's, say).
            raise StoreUnreachable("the database cannot be reached", cause=error) from None
        give_up_on_vanished_host(connection)
        return connection

    return create_async_engine(
        "postgresql+asyncpg://",
        async_creator=connect,
        pool_size=pool_size,
        # No connections beyond the pool: each new one costs a SCRAM handshake, several ms of
        # CPU on both sides, and under bursts extra ones were opened and closed by the dozen.
        max_overflow=0,
        pool_pre_ping=True,
        **bounded,
    )


def migrations_folder(name: str) -> Path:
    return Path(str(files("roadwatch.stores").joinpath("migrations", name)))


async def migrate(
    engine: AsyncEngine, *, folder: Path, version_table: str, to: str = "head"
) -> None:
    """Bring the schema up to the migration `to` in `folder` (Alembic), the newest unless
    told."""
    async with engine.begin() as connection:
        lock = text("SELECT pg_advisory_xact_lock(:key)")
        await connection.execute(lock, {"key": MIGRATION_LOCK})
        await connection.run_sync(_upgrade, folder, version_table, to)


async def is_current(engine: AsyncEngine, *, folder: Path, version_table: str) -> bool:
    """Whether the schema is at the newest migration in `folder` already."""
    config = Config()
    config.set_main_option("script_location", str(folder))
    heads = set(ScriptDirectory.from_config(config).get_heads())
    async with engine.connect() as connection:
        if await connection.scalar(text("SELECT to_regclass(:t)"), {"t": version_table}) is None:
            return False
        # The table's name is roadwatch's own, never input.
        query = text(f'SELECT version_num FROM "{version_table}"')  # noqa: S608
        versions = await connection.scalars(query)
        return set(versions) == heads


def _upgrade(connection: Connection, folder: Path, version_table: str, to: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(folder))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = version_table
    command.upgrade(config, to)


class MigratedDatabase:
    """A PostgreSQL database whose schema `open()` brings up to date: the engine's lifecycle
    that every SQL-backed store shares."""

    def __init__(
        self,
        url: str,
        *,
        migrations: str,
        pool_size: int = 10,
        query_timeout: float | None = None,
    ) -> None:
        self._url = url
        self._migrations = migrations
        self._pool_size = pool_size
        self._query_timeout = query_timeout
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the store is not open")
        return self._engine

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A connection for queries, whose timeouts come out as StoreBusy.

        Outside any transaction: each statement is its own snapshot, and a read costs one
        round trip instead of three (BEGIN and ROLLBACK around it).
        """
        with _busy_when_slow():
            async with self.engine.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                yield connection

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """A transaction, committed on leaving, whose timeouts come out as StoreBusy."""
        with _busy_when_slow():
            async with self.engine.begin() as connection:
                yield connection

    async def open(self) -> None:
        """Connect; bring the schema up to date if it is not, and this role may."""
        self._engine = async_engine(
            self._url, pool_size=self._pool_size, query_timeout=self._query_timeout
        )
        folder = migrations_folder(self._migrations)
        version_table = f"alembic_version_{self._migrations}"
        if await is_current(self._engine, folder=folder, version_table=version_table):
            return
        try:
            await migrate(self._engine, folder=folder, version_table=version_table)
        except sqlalchemy.exc.DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) != INSUFFICIENT_PRIVILEGE:
                raise
            raise ConfigurationError(
                f"the {self._migrations} schema is not up to date, and this database role may "
                "not change it: run `roadwatch migrate` (with MIGRATIONS_DB_URL naming the "
                "tables' owner)"
            ) from None

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))


def refused_for_the_data(error: BaseException) -> bool:
    """Whether a write failed for what its rows hold, which no retry mends: the server's
    refusal, or a value the driver could not encode."""
    if isinstance(error, sqlalchemy.exc.StatementError) and error.orig is not None:
        error = error.orig
    sqlstate = getattr(error, "sqlstate", None)
    if sqlstate is not None:
        return str(sqlstate)[:2] in REFUSED_SQLSTATE_CLASSES
    return isinstance(error, UnicodeError | ValueError | TypeError)


@contextmanager
def rows_at_fault() -> Iterator[None]:
    """A write refused for what its rows hold comes out as RecordsRefused."""
    try:
        yield
    except Exception as error:
        if refused_for_the_data(error):
            raise RecordsRefused(f"{type(error).__name__}: {error}"[:500]) from error
        raise


@contextmanager
def _busy_when_slow() -> Iterator[None]:
    """No free connection in time, or a statement cancelled by its timeout: StoreBusy. A
    database that dropped this connection: StoreUnreachable (one that refuses connections
    is named so as the engine connects)."""
    try:
        yield
    except sqlalchemy.exc.TimeoutError:
        raise StoreBusy("no database connection was free in time") from None
    except sqlalchemy.exc.DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == QUERY_CANCELED:
            raise StoreBusy("the query took longer than allowed") from None
        if _unreachable(error) or error.connection_invalidated:
            raise StoreUnreachable("the database cannot be reached", cause=error.orig) from None
        raise


def _unreachable(error: sqlalchemy.exc.DBAPIError) -> bool:
    """Whether the database refused or dropped the connection. SQLAlchemy's asyncpg adapter
    wraps the driver's error in one of its own (a server starting up, or at its connection
    limit, comes out as a plain DBAPIError), with the driver's as its cause."""
    driver = error.orig.__cause__ if error.orig is not None else None
    return isinstance(error.orig, UNREACHABLE) or isinstance(driver, UNREACHABLE)
