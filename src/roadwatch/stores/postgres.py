import asyncio
import builtins
import logging
from collections.abc import Sequence
from typing import Any, cast
from uuid import UUID

import asyncpg
import orjson
import sqlalchemy as sa

from roadwatch.domain import Alert, Detection, RuleRef, Source
from roadwatch.rejections import Reason, RecordsRefused
from roadwatch.stores.base import (
    AlertFilter,
    DetectionFilter,
    DetectionStore,
    Position,
    id_conflict,
    largest_first,
)
from roadwatch.stores.postgres_tables import alert_rules, detections, make_counts
from roadwatch.stores.postgres_tables import alerts as alerts_table
from roadwatch.stores.sql import MigratedDatabase

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

# Then one statement, so one atomic step: the rows not stored yet go in, and the per-make
# counts grow by exactly those rows. Makes are counted in a fixed order so that two savers
# never lock the same count rows in opposite orders.
SAVE_INCOMING = """
WITH inserted AS (
    INSERT INTO detections
        (id, "timestamp", year, make, model, category,
         source_topic, source_partition, source_offset)
    SELECT id, "timestamp", year, make, model, category,
           source_topic, source_partition, source_offset
    FROM incoming_detections
    ON CONFLICT (id) DO NOTHING
    RETURNING make
), counted AS (
    INSERT INTO make_counts (make, count)
    SELECT make, count(*) FROM inserted GROUP BY make ORDER BY make
    ON CONFLICT (make) DO UPDATE SET count = make_counts.count + EXCLUDED.count
)
SELECT count(*) FROM inserted
"""

# Run only when some rows were not inserted: which of them carry an id that another record
# holds, and which record that is. A replay of the same record is no conflict.
FIND_CONFLICTS = """
SELECT i.source_topic, i.source_partition, i.source_offset,
       d.source_topic, d.source_partition, d.source_offset
FROM incoming_detections i JOIN detections d ON d.id = i.id
WHERE (d.source_topic, d.source_partition, d.source_offset)
      IS DISTINCT FROM (i.source_topic, i.source_partition, i.source_offset)
"""

# The alerts of a batch, and one row per rule each matched, in one statement. An alert kept
# already (a replay) keeps its rows as they were.
SAVE_ALERTS = """
WITH inserted AS (
    INSERT INTO alerts
        (id, "timestamp", year, make, model, category,
         source_topic, source_partition, source_offset, rules)
    SELECT * FROM unnest(
        $1::uuid[], $2::timestamptz[], $3::int2[], $4::text[], $5::text[], $6::text[],
        $7::text[], $8::int4[], $9::int8[], $10::jsonb[])
    ON CONFLICT (id) DO NOTHING
    RETURNING id, "timestamp", rules
), by_rule AS (
    INSERT INTO alert_rules (rule_id, "timestamp", alert_id)
    SELECT (rule ->> 'id')::uuid, inserted."timestamp", inserted.id
    FROM inserted, jsonb_array_elements(inserted.rules) AS rule
    ON CONFLICT DO NOTHING
)
SELECT count(*) FROM inserted
"""

# Deadlock and serialization failures roll the whole statement back: it is safe to run again.
RETRYABLE_SQLSTATES = {"40P01", "40001"}
# Data exceptions, integrity violations, values beyond a limit: the rows are at fault.
REFUSED_SQLSTATE_CLASSES = {"22", "23", "54"}
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

    async def save(self, batch: Sequence[Detection]) -> int:
        if not batch:
            return 0
        rows = [_row(d) for d in batch]
        for attempt in range(1, SAVE_ATTEMPTS + 1):
            try:
                return await self._save(rows)
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
        # The pool lends the connection; COPY is asyncpg's alone, so the save runs on the
        # driver's connection, in a transaction of its own.
        async with self.engine.connect() as connection:
            pooled = await connection.get_raw_connection()
            # The engine is postgresql+asyncpg: its driver connections are asyncpg's.
            driver = cast(asyncpg.Connection, pooled.driver_connection)
            if INCOMING not in pooled.info:  # the info lives as long as the connection
                await driver.execute(CREATE_INCOMING)
                pooled.info[INCOMING] = True
            async with driver.transaction():
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
        columns = list(zip(*(_alert_row(alert) for alert in alerts), strict=True))
        async with self.engine.connect() as connection:
            pooled = await connection.get_raw_connection()
            driver = cast(asyncpg.Connection, pooled.driver_connection)
            return int(await driver.fetchval(SAVE_ALERTS, *columns))

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
                .join(alert_rules, alert_rules.c.alert_id == alerts_table.c.id)
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

    async def count_by_make(self) -> dict[str, int]:
        query = sa.select(make_counts.c.make, make_counts.c.count).where(make_counts.c.count > 0)
        async with self.reading() as connection:
            rows = (await connection.execute(query)).all()
        return largest_first({make: int(count) for make, count in rows})

    async def group_by_make(self) -> dict[str, int]:
        query = sa.select(detections.c.make, sa.func.count()).group_by(detections.c.make)
        async with self.reading() as connection:
            rows = (await connection.execute(query)).all()
        return largest_first({make: int(count) for make, count in rows})

    async def count(
        self,
        where: DetectionFilter = DetectionFilter(),  # noqa: B008
        *,
        cap: int | None = None,
    ) -> int:
        matching = sa.select(sa.literal(1)).select_from(detections).where(*_conditions(where))
        if cap is not None:
            matching = matching.limit(cap + 1)
        query = sa.select(sa.func.count()).select_from(matching.subquery())
        async with self.reading() as connection:
            return int((await connection.execute(query)).scalar_one())

    async def list(
        self,
        where: DetectionFilter = DetectionFilter(),  # noqa: B008
        *,
        skip: int = 0,
        limit: int = 50,
        after: Position | None = None,
    ) -> list[Detection]:
        conditions = _conditions(where)
        if after is not None:
            conditions.append(
                sa.tuple_(detections.c.timestamp, detections.c.id)
                < sa.tuple_(sa.literal(after.timestamp), sa.literal(after.id))
            )
        query = (
            sa.select(detections)
            .where(*conditions)
            .order_by(detections.c.timestamp.desc(), detections.c.id.desc())
            .offset(skip)
            .limit(limit)
        )
        async with self.reading() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [_detection(row) for row in rows]


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


def _conditions(where: DetectionFilter) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    for column in ("make", "model", "category", "year"):
        value = getattr(where, column)
        if value is not None:
            conditions.append(detections.c[column] == value)
    if where.since is not None:
        conditions.append(detections.c.timestamp >= where.since)
    if where.until is not None:
        conditions.append(detections.c.timestamp < where.until)
    return conditions


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
