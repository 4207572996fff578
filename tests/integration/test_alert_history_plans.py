"""The alert history by rule reads a page's worth of alerts, whatever the planner knows.

As one join of the alerts and the rule's rows, the planner, once the tables had statistics
(`ANALYZE`, which an operator runs and autovacuum partly does), joined every alert to sort
them: 100-250 ms a page at 1,000,000 alerts, growing with the history. The query now takes
the page from the rule's own rows first (stores/postgres_alert_history.py)."""

import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

from roadwatch.domain import Alert, RuleRef
from roadwatch.stores.detection_store import AlertFilter, Position
from roadwatch.stores.postgres import PostgresDetectionStore
from roadwatch.stores.postgres_alert_history import history_query
from tests.helpers.factories import EPOCH, make_detection

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

RULES = [RuleRef(uuid.UUID(int=n, version=4), f"rule-{n}") for n in range(20)]
ALERTS = 30_000
PAGE = 50


def _alerts_read(plan: Any) -> int:
    """Rows the plan's scans of the alerts' partitions returned, over all their loops."""
    read = 0
    if str(plan.get("Relation Name", "")).startswith("alerts_p"):
        read += int(plan["Actual Rows"]) * int(plan["Actual Loops"])
    for child in plan.get("Plans", []):
        read += _alerts_read(child)
    return read


async def test_a_page_of_a_rules_history_reads_a_page_of_alerts(postgres_database: str) -> None:
    store = PostgresDetectionStore(postgres_database)
    await store.open()
    try:
        # Three days of alerts, each of one rule of twenty.
        spacing = timedelta(days=3) / ALERTS
        for first in range(0, ALERTS, 10_000):
            batch = [
                make_detection(timestamp=EPOCH + n * spacing) for n in range(first, first + 10_000)
            ]
            await store.save(batch)
            await store.save_alerts(
                [Alert(d, (RULES[n % len(RULES)],)) for n, d in enumerate(batch)]
            )
        middle = (await store.alerts(AlertFilter(rule=RULES[3].id), limit=ALERTS // 40))[-1]
    finally:
        await store.close()
    connection = await asyncpg.connect(postgres_database)
    try:
        await connection.execute("ANALYZE")
        for where, after in (
            (AlertFilter(rule=RULES[3].id), None),
            (
                AlertFilter(rule=RULES[3].id),
                Position(middle.detection.timestamp, middle.detection.id),
            ),
            (
                AlertFilter(
                    rule=RULES[3].id,
                    since=EPOCH + timedelta(days=1),
                    until=EPOCH + timedelta(days=2),
                ),
                None,
            ),
        ):
            # As the store sends it: asyncpg's numbered parameters.
            query = history_query(where, limit=PAGE, after=after).compile(
                dialect=PGDialect_asyncpg()  # type: ignore[no-untyped-call]
            )
            arguments = [query.params[name] for name in query.positiontup or ()]
            (explained,) = orjson.loads(
                await connection.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {query}", *arguments)
            )
            assert explained["Plan"]["Actual Rows"] == PAGE
            read = _alerts_read(explained["Plan"])
            assert read <= PAGE, f"{read} alerts read for a page of {PAGE} ({where}, {after})"
    finally:
        await connection.close()
