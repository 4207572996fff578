"""An A/B of where PostgreSQL keeps an alert: in rows of its own (`alerts`, as roadwatch
does), or in its detection's row (a `rules` column, a partial index by time for the
history), at the store, with the same batches, taking turns on fresh databases.

B is built here only, on top of the migrated schema: one COPY and one statement a batch
store the detections, their rules, the rule rows of the history by rule and every count. A
keeps each batch's alerts in a second statement after its detections, as the indexer does.
"""

import asyncio
import random
import time
from collections.abc import Sequence
from typing import Any

import asyncpg

from bench.indexer_throughput import parsed, summary
from bench.stack import Bench, postgres_cpu_seconds
from bench.watchlists import mixed_rules
from roadwatch.bootstrap.stores import detection_store
from roadwatch.catalog.vehicles import load_catalog
from roadwatch.domain import Alert, Detection
from roadwatch.stores.postgres import PostgresDetectionStore
from roadwatch.stores.postgres_rows import alert_row, detection_row, utc_day
from roadwatch.stores.postgres_time_counts import COUNT_INSERTED, COUNT_INSERTED_ALERTS
from roadwatch.watchlists.matching import RuleIndex

RULES = 10_000
SAVES_AT_ONCE = 2
BATCH = 5_000
TABLES = "^(detections|detection_ids|alerts|alert_rules|time_counts|make_counts)"

IN_DETECTION_ROWS = [
    "ALTER TABLE detections ADD COLUMN rules jsonb",
    'CREATE INDEX ix_detections_alerts ON detections ("timestamp") WHERE rules IS NOT NULL',
]
INCOMING = """
CREATE TEMPORARY TABLE incoming_with_rules ON COMMIT DELETE ROWS AS
SELECT id, "timestamp", year, make, model, category,
       source_topic, source_partition, source_offset, rules
FROM detections WITH NO DATA"""


def _replaced(text: str, old: str, new: str) -> str:
    """`text` with its one `old` replaced: loud if the statement it edits has changed."""
    if text.count(old) != 1:
        raise ValueError(f"expected {old!r} once in the statement")
    return text.replace(old, new)


# The alerts' counts as the store keeps them, taken from the detections that carry rules.
_COUNT_ALERTS = _replaced(
    _replaced(COUNT_INSERTED_ALERTS, "counted_in_time AS", "alerts_counted_in_time AS"),
    "FROM inserted\n",
    "FROM inserted WHERE rules IS NOT NULL\n",
)
SAVE_WITH_RULES = f"""
WITH claimed AS (
    INSERT INTO detection_ids (id, "timestamp")
    SELECT id, "timestamp" FROM incoming_with_rules
), inserted AS (
    INSERT INTO detections
        (id, "timestamp", year, make, model, category,
         source_topic, source_partition, source_offset, rules)
    SELECT * FROM incoming_with_rules
    RETURNING id, "timestamp", make, category, rules
), counted AS (
    INSERT INTO make_counts (make, count)
    SELECT make, count(*) FROM inserted GROUP BY make ORDER BY make
    ON CONFLICT (make) DO UPDATE SET count = make_counts.count + EXCLUDED.count
), {COUNT_INSERTED}, by_rule AS (
    INSERT INTO alert_rules (rule_id, "timestamp", alert_id)
    SELECT (rule ->> 'id')::uuid, inserted."timestamp", inserted.id
    FROM inserted, jsonb_array_elements(inserted.rules) AS rule
), {_COUNT_ALERTS}
SELECT count(*) FROM inserted
"""  # noqa: S608 (constants only)

Work = list[tuple[list[Detection], list[Alert]]]


async def measure(bench: Bench, *, count: int, runs: int) -> dict[str, Any]:
    catalog = load_catalog()
    rules = RuleIndex(mixed_rules(RULES, catalog, random.Random(1)))
    rng = random.Random(1)
    detections = parsed([rng.choice(catalog).as_message() for _ in range(count)], "bench")
    work: Work = []
    for first in range(0, count, BATCH):
        batch = detections[first : first + BATCH]
        matched = ((d, rules.matches(d)) for d in batch)
        work.append((batch, [Alert.of(d, m) for d, m in matched if m]))
    alerts = sum(len(batch_alerts) for _, batch_alerts in work)
    results: dict[str, list[dict[str, float]]] = {"own_rows": [], "detection_rows": []}
    for _ in range(runs):
        for variant in results:
            async with bench.postgres_database() as url:
                run = await _run(url, work, in_detection_rows=variant == "detection_rows")
            results[variant].append(run)
    summed: dict[str, dict[str, Any]] = {
        variant: {
            "per_second": summary([run["per_second"] for run in runs_of]),
            "postgres_cpu_us_per_row": summary(
                [run["postgres_cpu_us_per_row"] for run in runs_of], digits=1
            ),
            "tables_mb": round(max(run["tables_mb"] for run in runs_of)),
        }
        for variant, runs_of in results.items()
    }
    return {
        "detections": count,
        "alerting_share": round(alerts / count, 3),
        **summed,
        "ratio": round(
            summed["detection_rows"]["per_second"]["median"]
            / summed["own_rows"]["per_second"]["median"],
            2,
        ),
    }


async def _run(url: str, work: Work, *, in_detection_rows: bool) -> dict[str, float]:
    store = detection_store(url)
    assert isinstance(store, PostgresDetectionStore)
    await store.open()
    await store.prepare_days({utc_day(d.timestamp) for batch, _ in work for d in batch})
    server = await asyncpg.connect(url)
    pool: asyncpg.Pool | None = None
    if in_detection_rows:
        for statement in IN_DETECTION_ROWS:
            await server.execute(statement)
        pool = await asyncpg.create_pool(
            url, min_size=SAVES_AT_ONCE, max_size=SAVES_AT_ONCE, init=_with_incoming
        )
    slots = asyncio.Semaphore(SAVES_AT_ONCE)

    async def save(batch: list[Detection], alerts: list[Alert]) -> None:
        try:
            if pool is None:
                await store.save(batch)
                await store.save_alerts(alerts)
            else:
                await _save_with_rules(pool, batch, alerts)
        finally:
            slots.release()

    try:
        cpu_before, started = postgres_cpu_seconds(), time.perf_counter()
        saves = []
        for batch, alerts in work:
            await slots.acquire()
            saves.append(asyncio.create_task(save(batch, alerts)))
        await asyncio.gather(*saves)
        elapsed = time.perf_counter() - started
        cpu = postgres_cpu_seconds() - cpu_before
        size = await server.fetchval(
            "SELECT sum(pg_total_relation_size(oid)) FROM pg_class "
            "WHERE relkind = 'r' AND relname ~ $1",
            TABLES,
        )
    finally:
        if pool is not None:
            await pool.close()
        await server.close()
        await store.close()
    rows = sum(len(batch) for batch, _ in work)
    return {
        "per_second": rows / elapsed,
        "postgres_cpu_us_per_row": cpu / rows * 1e6,
        "tables_mb": float(size) / 1e6,
    }


async def _with_incoming(connection: asyncpg.Connection) -> None:
    await connection.execute(INCOMING)


async def _save_with_rules(
    pool: asyncpg.Pool, batch: Sequence[Detection], alerts: Sequence[Alert]
) -> None:
    rules = {alert.detection.id: alert_row(alert)[-1] for alert in alerts}
    rows = [(*detection_row(d), rules.get(d.id)) for d in batch]
    async with pool.acquire() as connection, connection.transaction():
        await connection.copy_records_to_table("incoming_with_rules", records=rows)
        stored = await connection.fetchval(SAVE_WITH_RULES)
    assert stored == len(rows), f"{stored} of {len(rows)} stored"


def section(x: dict[str, Any]) -> list[str]:
    """The A/B as docs/benchmarks.md gives it."""
    rows = [
        f"| {label} | {x[name]['per_second']['median']:,} | "
        f"{x[name]['per_second']['min']:,}–{x[name]['per_second']['max']:,} | "
        f"{x[name]['per_second']['runs']} | {x[name]['postgres_cpu_us_per_row']['median']} µs | "
        f"{x[name]['tables_mb']:,} MB |"
        for name, label in (
            ("own_rows", "in rows of their own (`alerts`), as roadwatch keeps them"),
            ("detection_rows", "in the detection's row (`rules`, a partial index by time)"),
        )
    ]
    return [
        "",
        "## Where an alert is kept",
        "",
        f"{x['detections']:,} detections ({x['alerting_share']:.1%} of them alerting, under "
        f"{RULES:,} rules) saved by the store alone in batches of {BATCH:,}, {SAVES_AT_ONCE} at "
        "once, with every count and the history by rule, taking turns on fresh databases "
        "(`bench/alerts_in_rows.py`). PostgreSQL's CPU is every server process's, per "
        "detection; the size is the tables' with their indexes.",
        "",
        "| alerts kept | detections/s (median) | range | runs | PostgreSQL CPU a row | size |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"In the detection's row against rows of their own: {x['ratio']:.2f}.",
    ]
