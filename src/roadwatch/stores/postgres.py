import builtins
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime
from typing import Any, cast

import asyncpg
from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    wait_incrementing,
)

from roadwatch.domain import Alert, Detection
from roadwatch.rejections import RecordsRefused
from roadwatch.stores import postgres_days, postgres_time_counts
from roadwatch.stores.detection_store import (
    AlertFilter,
    DetectionFilter,
    DetectionStore,
    Dimension,
    Position,
    TimelineBucket,
    largest_first,
)
from roadwatch.stores.driver_pool import DriverPool
from roadwatch.stores.postgres_alert_saves import save_alerts
from roadwatch.stores.postgres_pages import Pages
from roadwatch.stores.postgres_rows import (
    alert_row,
    detection_row,
    refuse_conflicts,
    utc_day,
)
from roadwatch.stores.postgres_statements import (
    COLUMNS,
    COUNTS_BY_CATEGORY,
    COUNTS_BY_MAKE,
    FIND_HELD_IDS,
    GROUP_BY_MAKE,
    INCOMING,
    INCOMING_TABLES,
    NO_PARTITION,
    SAVE_INCOMING,
    SAVE_NEW_INCOMING,
)
from roadwatch.stores.sql import REFUSED_SQLSTATE_CLASSES, MigratedDatabase, rolled_back
from roadwatch.time_buckets import Bucket

log = logging.getLogger(__name__)

SAVE_ATTEMPTS = 5
SAVES_AT_ONCE = 2


class PostgresDetectionStore(MigratedDatabase, DetectionStore):
    """Detections in PostgreSQL (SQLAlchemy over asyncpg), schema by Alembic migrations."""

    # Each save is one statement that counts exactly the rows it inserted, so saves commute;
    # two at once keep the server busy inserting one batch while the next is on its way.
    saves_at_once = SAVES_AT_ONCE

    def __init__(
        self, url: str, *, pool_size: int = 10, query_timeout: float | None = None
    ) -> None:
        super().__init__(
            url, migrations="detections", pool_size=pool_size, query_timeout=query_timeout
        )
        # Reads run on asyncpg's pool, writes (COPY) on the engine's driver connections.
        self._reads = DriverPool(url, size=pool_size, query_timeout=query_timeout)
        self._pages = Pages(self._reads)
        # The days whose partitions exist, as far as this process knows.
        self._days: set[date] = set()

    async def save(self, batch: Sequence[Detection]) -> int:
        if not batch:
            return 0
        await self._prepare_new_days(batch)
        rows = [detection_row(d) for d in batch]
        for last in (False, True):
            try:
                return await self._save_through_deadlocks(rows)
            except asyncpg.CheckViolationError as error:
                # An id released by retention since it was looked up: its day is wanted after
                # all. Any other check is the record's fault.
                if last or NO_PARTITION not in str(error):
                    raise RecordsRefused(f"PostgreSQL {error.sqlstate}: {error}") from error
                await self.prepare_days({utc_day(d.timestamp) for d in batch})
        raise AssertionError("unreachable")

    async def _save_through_deadlocks(self, rows: list[tuple[Any, ...]]) -> int:
        """Saved, tried again after a deadlock or a serialization failure (which roll the
        whole statement back); a refusal of what the rows hold raised as RecordsRefused."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(rolled_back),
            stop=stop_after_attempt(SAVE_ATTEMPTS),
            wait=wait_incrementing(start=0.05, increment=0.05),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        )
        try:
            saved: int = await retrying(self._save, rows)
        except asyncpg.CheckViolationError:
            raise
        except asyncpg.PostgresError as error:
            if str(error.sqlstate)[:2] in REFUSED_SQLSTATE_CLASSES:
                raise RecordsRefused(f"PostgreSQL {error.sqlstate}: {error}") from error
            raise
        return saved

    async def _save(self, rows: list[tuple[Any, ...]]) -> int:
        # COPY is asyncpg's alone, so the save runs on the driver's connection, in a
        # transaction of its own.
        async with self._driver(INCOMING) as driver, driver.transaction():
            try:
                await driver.copy_records_to_table(INCOMING, records=rows, columns=COLUMNS)
            except (ValueError, TypeError) as error:
                # Raised while encoding a row, before anything reached the server.
                raise RecordsRefused(f"{type(error).__name__}: {error}") from error
            try:
                async with driver.transaction():  # a savepoint: the copied rows stay
                    return int(await driver.fetchval(SAVE_NEW_INCOMING))
            except asyncpg.UniqueViolationError:
                pass  # an id held already: the rows are saved skipping those
            except asyncpg.CheckViolationError as error:
                # A day not made: perhaps only for a row whose id is held, which goes in
                # no day. The rows are saved skipping those, and say if a day is wanted.
                if NO_PARTITION not in str(error):
                    raise
            stored = int(await driver.fetchval(SAVE_INCOMING))
            if stored < len(rows):
                # Raised inside the transaction, which it rolls back.
                await refuse_conflicts(driver, rows)
            return stored

    async def save_alerts(self, alerts: Sequence[Alert]) -> int:
        if not alerts:
            return 0
        await self.prepare_days({utc_day(a.detection.timestamp) for a in alerts})
        rows = [alert_row(alert) for alert in alerts]
        try:
            return await save_alerts(self._driver, rows)
        except asyncpg.PostgresError as error:
            # Refused for what an alert holds: trying again cannot help, and would hold up
            # every batch behind this one.
            if str(error.sqlstate)[:2] in REFUSED_SQLSTATE_CLASSES:
                raise RecordsRefused(
                    f"keeping the alert: PostgreSQL {error.sqlstate}: {error}"
                ) from error
            raise
        except (ValueError, TypeError) as error:
            raise RecordsRefused(f"keeping the alert: {type(error).__name__}: {error}") from error

    async def alerts(
        self,
        where: AlertFilter = AlertFilter(),  # noqa: B008
        *,
        limit: int = 50,
        after: Position | None = None,
    ) -> builtins.list[Alert]:
        return await self._pages.alerts(where, limit=limit, after=after)

    async def _prepare_new_days(self, batch: Sequence[Detection]) -> None:
        """The days of the batch's detections not stored yet, of those this process does not
        know: a replay, or a record whose id another holds, goes into no day, so a stream of
        them cannot make tables that stay empty."""
        unknown = [d for d in batch if utc_day(d.timestamp) not in self._days]
        if not unknown:
            return
        async with self._driver() as driver:
            held = await driver.fetch(FIND_HELD_IDS, [d.id for d in unknown])
        stored = {row[0] for row in held}
        await self.prepare_days({utc_day(d.timestamp) for d in unknown if d.id not in stored})

    async def prepare_days(self, days: Iterable[date]) -> None:
        wanted = set(days)
        missing = wanted - self._days
        if not missing:
            return
        async with self._driver() as driver:
            missing -= await postgres_days.existing_days(driver)
            if missing:
                await postgres_days.create_days(driver, missing)
        self._days |= wanted

    async def drop_days_before(self, day: date) -> builtins.list[date]:
        async with self._driver() as driver:
            expired = sorted(d for d in await postgres_days.existing_days(driver) if d < day)
            for old in expired:
                await postgres_days.drop_day(driver, old)
                self._days.discard(old)
        return expired

    async def counts_between(
        self, by: Dimension, since: datetime, until: datetime
    ) -> dict[str, int]:
        return await postgres_time_counts.counts_between(self._reads, by, since, until)

    async def timeline(
        self, *, bucket: Bucket, since: datetime, until: datetime, by: Dimension
    ) -> builtins.list[TimelineBucket]:
        return await postgres_time_counts.series(
            self._reads, bucket=bucket, since=since, until=until, by=by
        )

    @asynccontextmanager
    async def _driver(self, holding: str | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the write pool, as asyncpg's own (COPY, DDL); holding the temporary
        table named, made on the connection's first use for it (INCOMING_TABLES)."""
        async with self.engine.connect() as connection:
            pooled = await connection.get_raw_connection()
            # The engine is postgresql+asyncpg: its driver connections are asyncpg's.
            driver = cast(asyncpg.Connection, pooled.driver_connection)
            if holding is not None and holding not in pooled.info:  # info lives as the connection
                await driver.execute(INCOMING_TABLES[holding])
                pooled.info[holding] = True
            yield driver

    async def open(self) -> None:
        await super().open()
        await self._reads.open()

    async def close(self) -> None:
        await self._reads.close()
        await super().close()

    async def count_by_make(self) -> dict[str, int]:
        rows = await self._reads.fetch(COUNTS_BY_MAKE)
        return largest_first({make: int(count) for make, count in rows})

    async def count_by_category(self) -> dict[str, int]:
        rows = await self._reads.fetch(COUNTS_BY_CATEGORY)
        return largest_first({category: int(count) for category, count in rows})

    async def group_by_make(self) -> dict[str, int]:
        rows = await self._reads.fetch(GROUP_BY_MAKE)
        return largest_first({make: int(count) for make, count in rows})

    async def count(
        self,
        where: DetectionFilter = DetectionFilter(),  # noqa: B008
        *,
        cap: int | None = None,
    ) -> int:
        return await self._pages.count(where, cap=cap)

    async def list(
        self,
        where: DetectionFilter = DetectionFilter(),  # noqa: B008
        *,
        skip: int = 0,
        limit: int = 50,
        after: Position | None = None,
    ) -> builtins.list[Detection]:
        return await self._pages.detections(where, skip=skip, limit=limit, after=after)
