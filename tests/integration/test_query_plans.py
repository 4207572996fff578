"""Statements that serve a page, or check a batch, read rows in proportion to the page or the
batch, whatever the planner knows: before the tables have statistics, and after `ANALYZE`
(an operator's, or what autovacuum gathers on a running database).

- A rule's alert history was one join of the alerts and the rule's rows. With statistics,
  the planner joined every alert to sort them: 100-250 ms a page at 1,000,000 alerts,
  growing with the history. The page is now taken from the rule's rows first, and its alerts
  looked up by key (stores/postgres_alert_history.py): as a plain join, past a few days'
  tables the planner hashed every alert instead, with or without statistics.
- Before a day's tables are made, the batch's ids are looked up, so that a replay makes no
  tables: by key, however large the table of ids (FIND_HELD_IDS).
- The check for ids held by other records, run for every replayed batch, scanned every
  stored detection for each row of the batch: five minutes for a batch of 10,000 over
  300,000 stored. Each row now looks its id up by key (FIND_CONFLICTS).
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from roadwatch.domain import Alert, Detection, RuleRef, Source
from roadwatch.stores.detection_store import AlertFilter, Position
from roadwatch.stores.postgres import PostgresDetectionStore
from roadwatch.stores.postgres_alert_history import history_query
from roadwatch.stores.postgres_rows import detection_row
from roadwatch.stores.postgres_statements import (
    COLUMNS,
    CREATE_INCOMING,
    FIND_CONFLICTS,
    FIND_HELD_IDS,
    INCOMING,
)
from roadwatch.stores.webhook_tables import SEEN
from roadwatch.stores.webhooks_postgres import PostgresWebhookStore
from roadwatch.webhooks.retries import Outcome
from roadwatch.webhooks.store import Attempt
from roadwatch.webhooks.subscriptions import Delivery
from tests.helpers.factories import EPOCH, make_detection, make_webhook

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

RULES = [RuleRef(uuid.UUID(int=n, version=4), f"rule-{n}") for n in range(20)]
STORED = 30_000
# A month of day tables: with the three days first tried here, the plan that read every alert
# cost within 5% of the one by key, and came up only now and then.
DAYS = 30
PAGE = 50
REPLAYED = 2_000


def _read_from(plan: Any, table: str) -> int:
    """Rows the plan's scans of `table` (or of its partitions) read, kept or filtered out,
    over all their loops."""
    read = 0
    relation = str(plan.get("Relation Name", ""))
    if relation == table or relation.startswith(f"{table}_p"):
        rows = int(plan["Actual Rows"]) + int(plan.get("Rows Removed by Filter", 0))
        read += rows * int(plan["Actual Loops"])
    for child in plan.get("Plans", []):
        read += _read_from(child, table)
    return read


async def _explained(connection: asyncpg.Connection, sql: str, *arguments: Any) -> Any:
    (explained,) = orjson.loads(
        await connection.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *arguments)
    )
    return explained["Plan"]


async def _stored(url: str, *, alerting: bool) -> list[Detection]:
    """DAYS days of detections, each with an alert of one rule of twenty if `alerting`."""
    store = PostgresDetectionStore(url)
    await store.open()
    spacing = timedelta(days=DAYS) / STORED
    stored = [make_detection(timestamp=EPOCH + n * spacing) for n in range(STORED)]
    try:
        for first in range(0, STORED, 10_000):
            batch = stored[first : first + 10_000]
            await store.save(batch)
            if alerting:
                await store.save_alerts(
                    [Alert(d, (RULES[n % len(RULES)],)) for n, d in enumerate(batch)]
                )
    finally:
        await store.close()
    return stored


async def _pages_of_the_history(connection: asyncpg.Connection, middle: Position) -> None:
    window = (EPOCH + timedelta(days=1), EPOCH + timedelta(days=3))
    # A window's page of every rule's alerts may be read by sorting the window's alerts (2,000
    # here), as the planner judges cheaper: bounded by the window, not by the history.
    for where, after in (
        (AlertFilter(), None),
        (AlertFilter(), middle),
        (AlertFilter(rule=RULES[3].id), None),
        (AlertFilter(rule=RULES[3].id), middle),
        (AlertFilter(RULES[3].id, *window), None),
    ):
        sql, arguments = history_query(where, limit=PAGE, after=after)
        plan = await _explained(connection, sql, *arguments)
        assert plan["Actual Rows"] == PAGE
        read = _read_from(plan, "alerts")
        assert read <= PAGE, f"{read} alerts read for a page of {PAGE} ({where}, {after})"


async def test_a_page_of_the_alert_history_reads_a_page_of_alerts(
    postgres_database: str,
) -> None:
    stored = await _stored(postgres_database, alerting=True)
    # Halfway down rule 3's alerts: detection n alerts for rule n % 20.
    middle = stored[STORED // 2 + 3]
    connection = await asyncpg.connect(postgres_database)
    try:
        await _pages_of_the_history(connection, Position(middle.timestamp, middle.id))
        await connection.execute("ANALYZE")
        await _pages_of_the_history(connection, Position(middle.timestamp, middle.id))
    finally:
        await connection.close()


async def _conflicts_of_a_replay(
    connection: asyncpg.Connection, replayed: Sequence[Detection], conflicting: Detection
) -> None:
    async with connection.transaction():
        await connection.execute(CREATE_INCOMING)
        await connection.copy_records_to_table(
            INCOMING,
            records=[detection_row(d) for d in (*replayed, conflicting)],
            columns=COLUMNS,
        )
        plan = await _explained(connection, FIND_CONFLICTS)
        conflicts = await connection.fetch(FIND_CONFLICTS)
    (conflict,) = conflicts
    assert Source(*tuple(conflict)[:3]) == conflicting.source
    read = _read_from(plan, "detections")
    assert read <= len(replayed) + 1, f"{read} detections read for {len(replayed) + 1} rows"


async def test_a_replayed_batch_looks_up_its_own_rows_only(postgres_database: str) -> None:
    stored = await _stored(postgres_database, alerting=False)
    replayed = stored[STORED // 2 : STORED // 2 + REPLAYED]
    # An id held already, by another record.
    conflicting = make_detection(
        id=stored[0].id, timestamp=stored[0].timestamp, source=Source("other", 0, 1)
    )
    connection = await asyncpg.connect(postgres_database)
    try:
        await _conflicts_of_a_replay(connection, replayed, conflicting)
        await connection.execute("ANALYZE")
        await _conflicts_of_a_replay(connection, replayed, conflicting)
    finally:
        await connection.close()


async def test_the_ids_of_a_batch_for_a_new_day_are_looked_up_by_key(
    postgres_database: str,
) -> None:
    stored = await _stored(postgres_database, alerting=False)
    # A batch as a replay over a day the process has not seen brings: half held already.
    held = [d.id for d in stored[STORED // 2 : STORED // 2 + REPLAYED // 20]]
    batch = held + [uuid.uuid4() for _ in held]
    connection = await asyncpg.connect(postgres_database)
    try:
        for _ in ("before ANALYZE", "after"):
            plan = await _explained(connection, FIND_HELD_IDS, batch)
            assert plan["Actual Rows"] == len(held)
            read = _read_from(plan, "detection_ids")
            assert read <= len(batch), f"{read} ids read for a batch of {len(batch)}"
            await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def _delivered(url: str, count: int) -> list[uuid.UUID]:
    """`count` deliveries of one webhook, each made once; their ids."""
    store = PostgresWebhookStore(url)
    await store.open()
    try:
        webhook = await store.create(make_webhook(), created_by="admin")
        now = datetime.now(UTC)
        made = [Delivery(uuid.uuid4(), webhook.id, b"{}", now, attempts=1) for _ in range(count)]
        for first in range(0, count, 5000):
            batch = made[first : first + 5000]
            await store.record([Attempt(d, now, Outcome.DELIVERED, 200, 1.0, None) for d in batch])
    finally:
        await store.close()
    return [d.id for d in made]


async def test_the_deliveries_of_replayed_alerts_are_looked_up_by_key(
    postgres_database: str,
) -> None:
    made = await _delivered(postgres_database, STORED)
    replayed = made[STORED // 2 : STORED // 2 + REPLAYED // 20]
    ids = replayed + [uuid.uuid4() for _ in replayed]
    # As SQLAlchemy sends it to asyncpg: the one named parameter, numbered.
    sql = str(SEEN).replace(":ids", "$1")
    connection = await asyncpg.connect(postgres_database)
    try:
        for _ in ("before ANALYZE", "after"):
            plan = await _explained(connection, sql, ids)
            assert plan["Actual Rows"] == len(replayed)
            for table in ("webhook_attempts", "webhook_deliveries"):
                read = _read_from(plan, table)
                assert read <= len(ids), f"{read} rows of {table} read for {len(ids)} ids"
            await connection.execute("ANALYZE")
    finally:
        await connection.close()
