"""What the PostgreSQL-backed stores share: engines and controlled migrations."""

from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

# One advisory lock for all roadwatch migrations, so that processes starting together wait
# for each other instead of racing to create the same tables.
MIGRATION_LOCK = 0x726F6164


def async_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    scheme, rest = url.split("://", 1)
    if scheme not in {"postgresql", "postgres", "postgresql+asyncpg"}:
        raise ValueError(f"not a PostgreSQL URL: {scheme}://…")
    return create_async_engine(
        f"postgresql+asyncpg://{rest}",
        pool_size=pool_size,
        # No connections beyond the pool: each new one costs a SCRAM handshake, several ms of
        # CPU on both sides, and under bursts extra ones were opened and closed by the dozen.
        max_overflow=0,
        pool_pre_ping=True,
    )


def migrations_folder(name: str) -> Path:
    return Path(str(files("roadwatch.stores").joinpath("migrations", name)))


async def migrate(engine: AsyncEngine, *, folder: Path, version_table: str) -> None:
    """Bring the schema up to the newest migration in `folder` (Alembic)."""
    async with engine.begin() as connection:
        lock = text("SELECT pg_advisory_xact_lock(:key)")
        await connection.execute(lock, {"key": MIGRATION_LOCK})
        await connection.run_sync(_upgrade, folder, version_table)


def _upgrade(connection: Connection, folder: Path, version_table: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(folder))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = version_table
    command.upgrade(config, "head")


class MigratedDatabase:
    """A PostgreSQL database whose schema `open()` brings up to date: the engine's lifecycle
    that every SQL-backed store shares."""

    def __init__(self, url: str, *, migrations: str, pool_size: int = 10) -> None:
        self._url = url
        self._migrations = migrations
        self._pool_size = pool_size
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the store is not open")
        return self._engine

    async def open(self) -> None:
        self._engine = async_engine(self._url, pool_size=self._pool_size)
        await migrate(
            self._engine,
            folder=migrations_folder(self._migrations),
            version_table=f"alembic_version_{self._migrations}",
        )

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
