"""A batch's save into MongoDB (FerretDB) beside days of counts over time already kept.

Every batch updates its minutes', hours' and days' count documents. FerretDB reads a whole
collection for each lookup, so a save that slowed with the counts kept would slow with every
day the store has run: here, a fresh database is given the count documents that N days of a
stream over 6 partitions leave (a document a partition for each minute, hour and day, laid
out as the store lays them out). Then batches of new detections are saved and timed, and
the API's reads of counts over time after them."""

import asyncio
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from uuid import uuid4

import orjson
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from bench.stack import Bench
from roadwatch.bootstrap.stores import detection_store
from roadwatch.catalog.vehicles import Vehicle, load_catalog
from roadwatch.domain import Detection, Source
from roadwatch.stores.detection_store import DetectionStore, Dimension
from roadwatch.stores.mongo_count_periods import collection_name, period_of
from roadwatch.time_buckets import Bucket

PARTITIONS = 6
TOPIC = "detections"
# Makes a partition's document holds: a minute sees some, an hour more, a day all.
MAKES_SEEN = {Bucket.MINUTE: 40, Bucket.HOUR: 60}


async def measure(
    bench: Bench, *, days: list[int], batches: int = 5, batch: int = 1000
) -> dict[str, Any]:
    catalog = load_catalog()
    result: dict[str, Any] = {"partitions": PARTITIONS, "batch": batch, "days": {}}
    for kept in days:
        url = bench.mongo_database()
        documents = await _keep_counts(url, kept, catalog)
        store = detection_store(url)
        await store.open()
        try:
            seconds = await _timed_saves(store.save, catalog, batches=batches, batch=batch)
            now = Bucket.MINUTE.floor(datetime.now(UTC))
            reads = {what: await _timed(partial(read, store, now)) for what, read in READS.items()}
        finally:
            await store.close()
        client: AsyncMongoClient[dict[str, Any]]
        async with AsyncMongoClient(url) as client:
            await client.drop_database(client.get_default_database().name)
        result["days"][str(kept)] = {
            "count_documents": documents,
            "save_ms": _summary(seconds),
            "read_ms": reads,
        }
    return result


# The API's reads of counts over time, each up to `now`, a minute's start.
READS: dict[str, Callable[[DetectionStore, datetime], Awaitable[Any]]] = {
    "stats_30_days": lambda store, now: store.makes_between(now - timedelta(days=30), now),
    "timeline_hours_of_a_day": lambda store, now: store.timeline(
        bucket=Bucket.HOUR, since=now - timedelta(days=1), until=now, by=Dimension.MAKE
    ),
    "timeline_minutes_of_an_hour": lambda store, now: store.timeline(
        bucket=Bucket.MINUTE, since=now - timedelta(hours=1), until=now, by=Dimension.MAKE
    ),
}


async def _timed(read: Callable[[], Awaitable[Any]], runs: int = 3) -> dict[str, float]:
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        await read()
        seconds.append(time.perf_counter() - began)
    return _summary(seconds)


def _summary(seconds: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(seconds) * 1000, 1),
        "min": round(min(seconds) * 1000, 1),
        "max": round(max(seconds) * 1000, 1),
        "runs": len(seconds),
    }


async def _keep_counts(url: str, days: int, catalog: tuple[Vehicle, ...]) -> int:
    """The count documents that `days` of a stream leave, up to a few minutes ago."""
    rng = random.Random(days)
    makes = sorted({v.make for v in catalog})
    categories = sorted({v.category for v in catalog})
    now = Bucket.MINUTE.floor(datetime.now(UTC))
    by_collection: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for partition in range(PARTITIONS):
        moment = now - timedelta(days=days)
        while moment < now - timedelta(minutes=5):
            for bucket in Bucket:
                if not bucket.is_edge(moment):
                    continue
                seen = rng.sample(makes, min(MAKES_SEEN.get(bucket, len(makes)), len(makes)))
                by_collection[collection_name("time_counts", period_of(bucket, moment))].append(
                    {
                        "_id": f"{TOPIC}:{partition}:{bucket.value}:{moment.isoformat()}",
                        "bucket": bucket.value,
                        "start": moment,
                        "upto": 0,
                        "counts": {
                            "category": _entries(rng.sample(categories, 10), rng),
                            "make": _entries(seen, rng),
                        },
                    }
                )
            moment += timedelta(minutes=1)
    client: AsyncMongoClient[dict[str, Any]]
    async with AsyncMongoClient(url) as client:
        database: AsyncDatabase[dict[str, Any]] = client.get_default_database()
        for name, documents in by_collection.items():
            await database[name].insert_many(documents)
    return sum(len(documents) for documents in by_collection.values())


def _entries(keys: list[str], rng: random.Random) -> list[dict[str, Any]]:
    return [{"k": key, "n": rng.randint(1, 50)} for key in sorted(keys)]


async def _timed_saves(
    save: Callable[[list[Detection]], Awaitable[int]],
    catalog: tuple[Vehicle, ...],
    *,
    batches: int,
    batch: int,
) -> list[float]:
    rng = random.Random(0)
    offsets = [1_000_000] * PARTITIONS
    seconds = []
    for _ in range(batches):
        detections = []
        now = datetime.now(UTC)
        for index in range(batch):
            partition = index % PARTITIONS
            vehicle = rng.choice(catalog)
            detections.append(
                Detection(
                    uuid4(),
                    now,
                    vehicle.year,
                    vehicle.make,
                    vehicle.model,
                    vehicle.category,
                    Source(TOPIC, partition, offsets[partition]),
                )
            )
            offsets[partition] += 1
        began = time.perf_counter()
        await save(detections)
        seconds.append(time.perf_counter() - began)
    return seconds


def section(x: dict[str, Any]) -> list[str]:
    runs = x["days"]
    return [
        "",
        "## MongoDB: a batch's save beside the counts of days past",
        "",
        f"A batch of {x['batch']:,} detections saved into FerretDB, its counts over time "
        f"included, beside the count documents that days of a stream over {x['partitions']} "
        "partitions leave (`bench/count_history.py`), median of the batches: "
        + "; ".join(
            f"{days} day(s) kept ({run['count_documents']:,} count documents): "
            f"{run['save_ms']['median']} ms"
            for days, run in runs.items()
        )
        + ". Reads of those counts, median of 3: "
        + "; ".join(
            f"{days} day(s) kept: "
            + ", ".join(f"{what} {read['median']} ms" for what, read in run["read_ms"].items())
            for days, run in runs.items()
        )
        + ".",
    ]


if __name__ == "__main__":
    print(orjson.dumps(asyncio.run(measure(Bench(), days=[0, 1]))).decode())
