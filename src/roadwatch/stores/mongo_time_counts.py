"""The counts over time in MongoDB, kept exact without multi-document transactions.

As with the per-make counts, each count document belongs to one source partition and says
up to which offset it has counted: a document per (source partition, bucket, start), for
minutes, hours and days. A batch adds to a document only what lies past its offset, in one
conditional replace, so a batch replayed after a crash adds nothing twice.
"""

import asyncio
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from roadwatch.domain import FromRecord
from roadwatch.time_buckets import Bucket

Document = dict[str, Any]
# What one record adds to a document: (dimension, key) pairs, each counting one.
Keys = Callable[[Any], Iterable[tuple[str, str]]]
UPDATE_ATTEMPTS = 20


async def add(
    collection: AsyncCollection[Document],
    batch: Sequence[FromRecord],
    stored: Sequence[Any],
    *,
    time_of: Callable[[Any], datetime],
    keys: Keys,
) -> None:
    """Count what `stored` (the records of `batch` stored by their own record) adds to each
    (source partition, bucket, start) document, past the offset that document has reached."""
    last_offsets: dict[tuple[str, int], int] = {}
    for record in batch:
        key = (record.source.topic, record.source.partition)
        last_offsets[key] = max(last_offsets.get(key, -1), record.source.offset)
    grouped: dict[tuple[str, int, Bucket, datetime], list[Any]] = defaultdict(list)
    for record in stored:
        moment = time_of(record)
        for bucket in Bucket:
            start = bucket.floor(moment)
            grouped[(record.source.topic, record.source.partition, bucket, start)].append(record)
    await asyncio.gather(
        *(
            _add_to_document(
                collection,
                topic=topic,
                partition=partition,
                bucket=bucket,
                start=start,
                records=records,
                last_offset=last_offsets[(topic, partition)],
                keys=keys,
            )
            for (topic, partition, bucket, start), records in grouped.items()
        )
    )


async def _add_to_document(
    collection: AsyncCollection[Document],
    *,
    topic: str,
    partition: int,
    bucket: Bucket,
    start: datetime,
    records: list[Any],
    last_offset: int,
    keys: Keys,
) -> None:
    document_id = f"{topic}:{partition}:{bucket.value}:{start.isoformat()}"
    for _attempt in range(UPDATE_ATTEMPTS):
        current = await collection.find_one({"_id": document_id})
        counted_up_to = -1 if current is None else int(current["upto"])
        if last_offset <= counted_up_to:
            return
        counts = {
            dimension: as_counter(entries)
            for dimension, entries in ((current or {}).get("counts") or {}).items()
        }
        for record in records:
            if record.source.offset > counted_up_to:
                for dimension, key in keys(record):
                    counts.setdefault(dimension, Counter())[key] += 1
        replacement = {
            "_id": document_id,
            "bucket": bucket.value,
            "start": start,
            "upto": last_offset,
            "counts": {d: as_entries(c) for d, c in sorted(counts.items())},
        }
        if current is None:
            try:
                await collection.insert_one(replacement)
                return
            except DuplicateKeyError:
                continue
        result = await collection.replace_one(
            {"_id": document_id, "upto": counted_up_to}, replacement
        )
        if result.matched_count == 1:
            return
    raise RuntimeError(f"could not update the counts of {document_id}: too much contention")


async def sums(
    collection: AsyncCollection[Document],
    ranges: Iterable[tuple[Bucket, datetime, datetime]],
    dimension: str,
) -> dict[datetime, Counter[str]]:
    """Per bucket start, the counts of `dimension` over every source partition."""
    totals: dict[datetime, Counter[str]] = defaultdict(Counter)
    for bucket, first, end in ranges:
        found = collection.find(
            {"bucket": bucket.value, "start": {"$gte": first, "$lt": end}},
            {"start": 1, f"counts.{dimension}": 1},
        )
        async for document in found:
            totals[document["start"]].update(counts_of(document, dimension))
    return totals


def as_entries(counts: Counter[str]) -> list[Document]:
    # A list of entries, not a mapping: a key is any text, '.' and '$' included.
    return [{"k": key, "n": n} for key, n in sorted(counts.items())]


def as_counter(entries: list[Document]) -> Counter[str]:
    return Counter({entry["k"]: entry["n"] for entry in entries})


def counts_of(document: Document, dimension: str) -> Counter[str]:
    return as_counter((document.get("counts") or {}).get(dimension) or [])
