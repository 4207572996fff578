import asyncio
import builtins
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any, cast
from uuid import UUID

import asyncpg
import orjson
import sqlalchemy as sa

from roadwatch.domain import Alert, Detection, RuleRef, Source
from roadwatch.rejections import Reason, RecordsRefused
from roadwatch.stores import postgres_days, postgres_time_counts
from roadwatch.stores.base import (
    AlertFilter,
    DetectionFilter,
    DetectionStore,
    Dimension,
    Position,
    TimelineBucket,
    id_conflict,
    largest_first,
)
from roadwatch.stores.driver_pool import DriverPool
from roadwatch.stores.postgres_tables import alert_rules
from roadwatch.stores.postgres_tables import alerts as alerts_table
from roadwatch.stores.postgres_time_counts import COUNT_INSERTED, COUNT_INSERTED_ALERTS
from roadwatch.stores.sql import REFUSED_SQLSTATE_CLASSES, MigratedDatabase
from roadwatch.time_buckets import Bucket

log = logging.getLogger(__name__)

# A batch is first copied (COPY, the cheapest way in) into a temporary table of the
# connection's own, created with the connection and emptied at every commit.
COLUMNS = (
    "id",
    "timestamp",
    "year",
    "make",
    "model",
    "category",
    "source_topic",
    "source_partition",
    "source_offset",
)
INCOMING = "incoming_detections"
CREATE_INCOMING = """
CREATE TEMPORARY TABLE IF NOT EXISTS incoming_detections ON COMMIT DELETE ROWS AS
SELECT id, "timestamp", year, make, model, category,
       source_topic, source_partition, source_offset
FROM detections WITH NO DATA
"""

# Then one statement, so one atomic step: each row claims its id, those that did go in, and
# the per-make counts grow by exactly those rows. An id is claimed in `detection_ids`, one
# table across all days: the partitions' keys hold the time, and so could not keep an id
# from being stored twice at two times. Makes are counted in a fixed order so that two
# savers never lock the same count rows in opposite orders.
SAVE_INCOMING = f"""
WITH claimed AS (
    INSERT INTO detection_ids (id, "timestamp")
    SELECT id, "timestamp" FROM incoming_detections
    ON CONFLICT (id) DO NOTHING
    RETURNING id, "timestamp"
), inserted AS (
    INSERT INTO detections
        (id, "timestamp", year, make, model, category,
         source_topic, source_partition, source_offset)
    SELECT i.id, i."timestamp", year, make, model, category,
           source_topic, source_partition, source_offset
    FROM incoming_detections i
    JOIN claimed c ON c.id = i.id AND c."timestamp" = i."timestamp"
    ON CONFLICT ("timestamp", id) DO NOTHING
    RETURNING "timestamp", make, category
), counted AS (
    INSERT INTO make_counts (make, count)
    SELECT make, count(*) FROM inserted GROUP BY make ORDER BY make
    ON CONFLICT (make) DO UPDATE SET count = make_counts.count + EXCLUDED.count
), {COUNT_INSERTED}
SELECT count(*) FROM inserted
"""  # noqa: S608 (constants only)

# Run only when some rows were not inserted: which of them carry an id that another record
# holds, and which record that is. A replay of the same record is no conflict.
FIND_CONFLICTS = """
SELECT i.source_topic, i.source_partition, i.source_offset,
       d.source_topic, d.source_partition, d.source_offset
FROM incoming_detections i
JOIN detection_ids k ON k.id = i.id
JOIN detections d ON d."timestamp" = k."timestamp" AND d.id = k.id
WHERE (d.source_topic, d.source_partition, d.source_offset)
      IS DISTINCT FROM (i.source_topic, i.source_partition, i.source_offset)
"""

# The alerts of a batch, and one row per rule each matched, in one statement. An alert kept
# already (a replay) keeps its rows as they were.
SAVE_ALERTS = f"""
WITH inserted AS (
    INSERT INTO alerts
        (id, "timestamp", year, make, model, category,
         source_topic, source_partition, source_offset, rules)
    SELECT * FROM unnest(
        $1::uuid[], $2::timestamptz[], $3::int2[], $4::text[], $5::text[], $6::text[],
        $7::text[], $8::int4[], $9::int8[], $10::jsonb[])
    ON CONFLICT ("timestamp", id) DO NOTHING
    RETURNING id, "timestamp", rules
), by_rule AS (
    INSERT INTO alert_rules (rule_id, "timestamp", alert_id)
    SELECT (rule ->> 'id')::uuid, inserted."timestamp", inserted.id
    FROM inserted, jsonb_array_elements(inserted.rules) AS rule
    ON CONFLICT DO NOTHING
), {COUNT_INSERTED_ALERTS}
SELECT count(*) FROM inserted
"""  # noqa: S608 (constants only)

# Looked up only for detections of days this process has not made or seen made.
FIND_HELD_IDS = "SELECT id FROM detection_ids WHERE id = ANY($1::uuid[])"
# PostgreSQL's words for a row whose day has no partition (SQLSTATE 23514, a check).
NO_PARTITION = "no partition of relation"

# In the order of Detection's fields, which the page reads them in.
SELECT_DETECTIONS = """
SELECT id, "timestamp", year, make, model, category, source_topic, source_partition, source_offset
FROM detections"""
COUNTS_BY_MAKE = "SELECT make, count FROM make_counts WHERE count > 0"
GROUP_BY_MAKE = "SELECT make, count(*) FROM detections GROUP BY make"

# Deadlock and serialization failures roll the whole statement back: it is safe to run again.
RETRYABLE_SQLSTATES = {"40P01", "40001"}
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
        # The days whose partitions exist, as far as this process knows.
        self._days: set[date] = set()

    async def save(self, batch: Sequence[Detection]) -> int:
        if not batch:
            return 0
        await self._prepare_new_days(batch)
        rows = [_row(d) for d in batch]
        for attempt in range(1, SAVE_ATTEMPTS + 1):
            try:
                return await self._save(rows)
            except asyncpg.CheckViolationError as error:
                # An id released by retention since it was looked up: its day is wanted after
                # all. Any other check is the record's fault.
                if NO_PARTITION not in str(error) or attempt == SAVE_ATTEMPTS:
                    raise RecordsRefused(f"PostgreSQL {error.sqlstate}: {error}") from error
                await self.prepare_days({_utc_day(d.timestamp) for d in batch})
            except asyncpg.PostgresError as error:
                if str(error.sqlstate)[:2] in REFUSED_SQLSTATE_CLASSES:
                    raise RecordsRefused(f"PostgreSQL {error.sqlstate}: {error}") from error
                if error.sqlstate not in RETRYABLE_SQLSTATES or attempt == SAVE_ATTEMPTS:
                    raise
                log.warning(
                    "saving a batch hit %s; trying again (attempt %d)", error.sqlstate, attempt
                )
                await asyncio.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    async def _save(self, rows: list[tuple[Any, ...]]) -> int:
        # COPY is asyncpg's alone, so the save runs on the driver's connection, in a
        # transaction of its own.
        async with self._driver(with_incoming=True) as driver, driver.transaction():
            try:
                await driver.copy_records_to_table(INCOMING, records=rows, columns=COLUMNS)
            except (ValueError, TypeError) as error:
                # Raised while encoding a row, before anything reached the server.
                raise RecordsRefused(f"{type(error).__name__}: {error}") from error
            stored = int(await driver.fetchval(SAVE_INCOMING))
            if stored < len(rows):
                # Raised inside the transaction, which it rolls back.
                await _refuse_conflicts(driver, rows)
            return stored

    async def save_alerts(self, alerts: Sequence[Alert]) -> int:
        if not alerts:
            return 0
        await self.prepare_days({_utc_day(a.detection.timestamp) for a in alerts})
        columns = list(zip(*(_alert_row(alert) for alert in alerts), strict=True))
        try:
            async with self._driver() as driver:
                return int(await driver.fetchval(SAVE_ALERTS, *columns))
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
        # By rule, the rule's own rows give the order; otherwise the alerts' index does.
        if where.rule is None:
            order = (alerts_table.c.timestamp, alerts_table.c.id)
            query = sa.select(alerts_table)
        else:
            order = (alert_rules.c.timestamp, alert_rules.c.alert_id)
            query = (
                sa.select(alerts_table)
                # By the alerts' key, time and id: the id alone is no key of a partitioned table.
                .join(
                    alert_rules,
                    sa.and_(
                        alert_rules.c.timestamp == alerts_table.c.timestamp,
                        alert_rules.c.alert_id == alerts_table.c.id,
                    ),
                )
                .where(alert_rules.c.rule_id == where.rule)
            )
        timestamp, id_ = order
        if where.since is not None:
            query = query.where(timestamp >= where.since)
        if where.until is not None:
            query = query.where(timestamp < where.until)
        if after is not None:
            query = query.where(
                sa.tuple_(timestamp, id_)
                < sa.tuple_(sa.literal(after.timestamp), sa.literal(after.id))
            )
        query = query.order_by(timestamp.desc(), id_.desc()).limit(limit)
        async with self.reading() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [
            Alert(_detection(row), tuple(RuleRef(UUID(r["id"]), r["name"]) for r in row["rules"]))
            for row in rows
        ]

    async def _prepare_new_days(self, batch: Sequence[Detection]) -> None:
        """The days of the batch's detections not stored yet, of those this process does not
        know: a replay, or a record whose id another holds, goes into no day, so a stream of
        them cannot make tables that stay empty."""
        unknown = [d for d in batch if _utc_day(d.timestamp) not in self._days]
        if not unknown:
            return
        async with self._driver() as driver:
            held = await driver.fetch(FIND_HELD_IDS, [d.id for d in unknown])
        stored = {row[0] for row in held}
        await self.prepare_days({_utc_day(d.timestamp) for d in unknown if d.id not in stored})

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

    async def makes_between(self, since: datetime, until: datetime) -> dict[str, int]:
        return await postgres_time_counts.makes_between(self._reads, since, until)

    async def timeline(
        self, *, bucket: Bucket, since: datetime, until: datetime, by: Dimension
    ) -> builtins.list[TimelineBucket]:
        return await postgres_time_counts.series(
            self._reads, bucket=bucket, since=since, until=until, by=by
        )

    @asynccontextmanager
    async def _driver(self, *, with_incoming: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """A connection of the write pool, as asyncpg's own (COPY, DDL); `with_incoming`,
        holding the temporary table a save copies into."""
        async with self.engine.connect() as connection:
            pooled = await connection.get_raw_connection()
            # The engine is postgresql+asyncpg: its driver connections are asyncpg's.
            driver = cast(asyncpg.Connection, pooled.driver_connection)
            if with_incoming and INCOMING not in pooled.info:  # info lives as the connection
                await driver.execute(CREATE_INCOMING)
                pooled.info[INCOMING] = True
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

    async def group_by_make(self) -> dict[str, int]:
        rows = await self._reads.fetch(GROUP_BY_MAKE)
        return largest_first({make: int(count) for make, count in rows})

    async def count(
        self,
        where: DetectionFilter = DetectionFilter(),  # noqa: B008
        *,
        cap: int | None = None,
    ) -> int:
        query = _Query()
        conditions = query.conditions(where)
        limit = "" if cap is None else f" LIMIT {query.arg(cap + 1)}"
        # Column names and placeholders only: the values travel as arguments.
        sql = f"SELECT count(*) FROM (SELECT 1 FROM detections{conditions}{limit}) AS m"  # noqa: S608
        return int(await self._reads.fetchval(sql, *query.args))

    async def list(
        self,
        where: DetectionFilter = DetectionFilter(),  # noqa: B008
        *,
        skip: int = 0,
        limit: int = 50,
        after: Position | None = None,
    ) -> builtins.list[Detection]:
        query = _Query()
        conditions = query.conditions(where, after=after)
        sql = (
            f'{SELECT_DETECTIONS}{conditions} ORDER BY "timestamp" DESC, id DESC'
            f" OFFSET {query.arg(skip)} LIMIT {query.arg(limit)}"
        )
        return [
            Detection(id_, at, year, make, model, category, Source(topic, partition, offset))
            for id_, at, year, make, model, category, topic, partition, offset in (
                await self._reads.fetch(sql, *query.args)
            )
        ]


class _Query:
    """The WHERE clause of a read, with its values as numbered arguments ($1, $2…)."""

    def __init__(self) -> None:
        self.args: builtins.list[Any] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def conditions(self, where: DetectionFilter, *, after: Position | None = None) -> str:
        clauses = [
            f"{column} = {self.arg(getattr(where, column))}"
            for column in ("make", "model", "category", "year")
            if getattr(where, column) is not None
        ]
        if where.since is not None:
            clauses.append(f'"timestamp" >= {self.arg(where.since)}')
        if where.until is not None:
            clauses.append(f'"timestamp" < {self.arg(where.until)}')
        if after is not None:
            timestamp, id_ = self.arg(after.timestamp), self.arg(after.id)
            clauses.append(f'("timestamp", id) < ({timestamp}, {id_})')
        return " WHERE " + " AND ".join(clauses) if clauses else ""


async def _refuse_conflicts(driver: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    conflicts = await driver.fetch(FIND_CONFLICTS)
    if not conflicts:
        return
    index = {(row[6], row[7], row[8]): place for place, row in enumerate(rows)}
    culprits = {
        index[(topic, partition, offset)]: id_conflict(
            rows[index[(topic, partition, offset)]][0],
            Source(topic, partition, offset),
            Source(holder_topic, holder_partition, holder_offset),
        )
        for topic, partition, offset, holder_topic, holder_partition, holder_offset in conflicts
    }
    raise RecordsRefused(
        f"{len(culprits)} id(s) already held by other records",
        reason=Reason.ID_CONFLICT,
        culprits=culprits,
    )


def _utc_day(moment: datetime) -> date:
    return (moment if moment.tzinfo is UTC else moment.astimezone(UTC)).date()


def _row(d: Detection) -> tuple[Any, ...]:
    """A detection as the COLUMNS, in their order."""
    return (
        d.id,
        d.timestamp,
        d.year,
        d.make,
        d.model,
        d.category,
        d.source.topic,
        d.source.partition,
        d.source.offset,
    )


def _alert_row(alert: Alert) -> tuple[Any, ...]:
    rules = orjson.dumps([{"id": str(r.id), "name": r.name} for r in alert.rules]).decode()
    return (*_row(alert.detection), rules)


def _detection(row: Any) -> Detection:
    return Detection(
        id=row["id"],
        timestamp=row["timestamp"],
        year=row["year"],
        make=row["make"],
        model=row["model"],
        category=row["category"],
        source=Source(row["source_topic"], row["source_partition"], row["source_offset"]),
    )
