"""The API's reads of PostgreSQL beside days, a year and two years of day tables.

Each UTC day is a table of its own, and a store kept without retention (the default) gains
one a day. A read that names no time was planned and started over every day's table, so it
slowed with every day the store had run, however few its rows. The store now reads a few
days' tables at a time, newest first (stores/postgres_windows.py). This step stores the same
number of detections a day (a fifth of them alerting, under one rule) over 30, 365 and 730
days, runs ANALYZE as a running database would have, and times each read through the store,
and the first page of detections and of a rule's alerts as one statement over every day too,
as they were read before, in the same run. Then it times the save of batches of 10,000 new
detections into the newest day: writes go to one day's tables, whatever the number of days.
Ids are derived as the indexer derives them, time first."""

import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import orjson

from bench.api_scale import analyzed, random_detection
from bench.stack import Bench
from roadwatch.catalog.vehicles import load_catalog
from roadwatch.detection_ids import derived_id
from roadwatch.domain import Alert, Detection, RuleRef, Source
from roadwatch.stores.detection_store import AlertFilter, DetectionFilter, Position
from roadwatch.stores.postgres import PostgresDetectionStore
from roadwatch.stores.postgres_alert_history import history_query
from roadwatch.stores.postgres_statements import SELECT_DETECTIONS

RULE = RuleRef(uuid.UUID(int=1, version=4), "suvs")
END = datetime(2026, 12, 1, tzinfo=UTC)
# A listing's first page as the store sent it before: one statement over every day's table,
# its skip and limit as arguments.
ONE_STATEMENT_PAGE = f'{SELECT_DETECTIONS} ORDER BY "timestamp" DESC, id DESC OFFSET $1 LIMIT $2'
SAVED_BATCH = 10_000
SAVED_BATCHES = 6


async def measure(
    bench: Bench, *, days: list[int], per_day: int, samples: int = 25
) -> dict[str, Any]:
    result: dict[str, Any] = {"per_day": per_day, "samples": samples, "days": {}}
    for kept in days:
        async with bench.postgres_database() as url:
            result["days"][str(kept)] = await _measured(url, kept, per_day, samples)
    return result


async def _measured(url: str, days: int, per_day: int, samples: int) -> dict[str, Any]:
    store = PostgresDetectionStore(url)
    await store.open()
    try:
        stored = await _fill(store, days, per_day)
        await analyzed(url)
        middle = stored[len(stored) // 2]
        halfway = Position(middle.timestamp, middle.id)
        reads: dict[str, Callable[[], Awaitable[Any]]] = {
            "detections_first_page": lambda: store.list(limit=50),
            "detections_at_a_cursor": lambda: store.list(limit=50, after=halfway),
            "detections_of_a_make": lambda: store.list(DetectionFilter(make="Toyota"), limit=50),
            "detections_skip_500": lambda: store.list(skip=500, limit=50),
            # What a listing of one category counted for its total, to the cap, before the
            # counts per category; and what it reads now.
            "count_of_a_category": lambda: store.count(DetectionFilter(category="SUV"), cap=10_000),
            "counts_per_category": lambda: store.count_by_category(),
            "alerts_first_page": lambda: store.alerts(limit=50),
            "alerts_of_a_rule": lambda: store.alerts(AlertFilter(rule=RULE.id), limit=50),
        }
        timed = {name: await _timed(read, samples) for name, read in reads.items()}
        connection = await asyncpg.connect(url)
        try:
            rule_page, arguments = history_query(AlertFilter(rule=RULE.id), limit=50, after=None)
            timed["one_statement_detections_first_page"] = await _timed(
                lambda: connection.fetch(ONE_STATEMENT_PAGE, 0, 50), samples
            )
            timed["one_statement_alerts_of_a_rule"] = await _timed(
                lambda: connection.fetch(rule_page, *arguments), samples
            )
        finally:
            await connection.close()
        save_ms = await _saves(store, days)
    finally:
        await store.close()
    return {"detections": len(stored), "read_ms": timed, "save_10000_ms": save_ms}


async def _saves(store: PostgresDetectionStore, days: int) -> dict[str, float]:
    """Batches of new detections saved into the newest day, one after another: the median
    and the slowest of all but the first (which makes the statement's plan)."""
    rng = random.Random(-days)
    catalog = load_catalog()
    at = END - timedelta(hours=1)
    seconds = []
    for number in range(SAVED_BATCHES):
        first = number * SAVED_BATCH
        batch = [
            _as_indexed(
                random_detection(
                    rng,
                    catalog,
                    at=at + timedelta(milliseconds=first + n),
                    source=Source("saved", 0, first + n),
                )
            )
            for n in range(SAVED_BATCH)
        ]
        began = time.perf_counter()
        await store.save(batch)
        seconds.append(time.perf_counter() - began)
    timed = seconds[1:]
    return {
        "p50": round(statistics.median(timed) * 1000, 1),
        "max": round(max(timed) * 1000, 1),
    }


def _as_indexed(detection: Detection) -> Detection:
    """The detection with the id the indexer derives for it, ordered by time."""
    milliseconds = int(detection.timestamp.timestamp() * 1000)
    return msgspec.structs.replace(detection, id=derived_id(detection.source, milliseconds))


async def _fill(store: PostgresDetectionStore, days: int, per_day: int) -> list[Any]:
    rng = random.Random(days)
    catalog = load_catalog()
    count = days * per_day
    spacing = timedelta(days=days) / count
    start = END - timedelta(days=days)
    stored = [
        _as_indexed(
            random_detection(rng, catalog, at=start + n * spacing, source=Source("bench", 0, n))
        )
        for n in range(count)
    ]
    for first in range(0, count, 10_000):
        batch = stored[first : first + 10_000]
        await store.save(batch)
        await store.save_alerts([Alert(d, (RULE,)) for d in batch if d.category == "SUV"])
    return stored


async def _timed(read: Callable[[], Awaitable[Any]], samples: int) -> dict[str, float]:
    await read()  # the plan's first making, and the tables' first opening in the session
    seconds = []
    for _ in range(samples):
        began = time.perf_counter()
        await read()
        seconds.append(time.perf_counter() - began)
    seconds.sort()
    return {
        "p50": round(statistics.median(seconds) * 1000, 2),
        "p90": round(seconds[int(len(seconds) * 0.9) - 1] * 1000, 2),
    }


def section(x: dict[str, Any]) -> list[str]:
    runs = x["days"]
    names = list(next(iter(runs.values()))["read_ms"])
    return [
        "",
        "## PostgreSQL: reads beside a year of day tables",
        "",
        f"{x['per_day']:,} detections a day over 30, 365 and 730 days, after `ANALYZE`, read "
        f"through the store (`bench/many_days.py`), median of {x['samples']} in ms; the "
        "`one_statement` rows are the first pages read as one statement over every day's "
        "table, as before. The last row is a write: the median of "
        f"{SAVED_BATCHES - 1} batches saved one after another.",
        "",
        "| read | " + " | ".join(f"{days} days" for days in runs) + " |",
        "|---|" + "---|" * len(runs),
        *(
            f"| {name} | "
            + " | ".join(f"{run['read_ms'][name]['p50']}" for run in runs.values())
            + " |"
            for name in names
        ),
        "| a batch of 10,000 saved into the newest day | "
        + " | ".join(f"{run['save_10000_ms']['p50']}" for run in runs.values())
        + " |",
    ]


if __name__ == "__main__":
    print(orjson.dumps(asyncio.run(measure(Bench(), days=[30], per_day=200))).decode())
