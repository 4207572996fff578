"""The counts over time in MongoDB, kept exact without multi-document transactions.

As with the per-make counts, each count document belongs to one source partition and says
up to which offset it has counted: a document per (source partition, bucket, start), for
minutes, hours and days. A batch adds to a document only what lies past its offset, in one
conditional replace, so a batch replayed after a crash adds nothing twice.
"""

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from roadwatch.domain import FromRecord
from roadwatch.runtime.gathering import all_ended
from roadwatch.time_buckets import Bucket

Document = dict[str, Any]
# What one record adds to a document: (dimension, key) pairs, each counting one.
Keys = Callable[[Any], Iterable[tuple[str, str]]]
UPDATE_ATTEMPTS = 20


@dataclass
class _Counted:
    """What a batch adds to one document: its records, and their counts, made once."""

    records: list[Any]
    counts: dict[str, Counter[str]]
    first_offset: int


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
    # Each record is counted once, in its minute; hours and days add up their minutes.
    by_minute: dict[tuple[str, int, datetime], list[Any]] = defaultdict(list)
    for record in stored:
        source = record.source
        by_minute[(source.topic, source.partition, Bucket.MINUTE.floor(time_of(record)))].append(
            record
        )
    grouped: dict[tuple[str, int, Bucket, datetime], _Counted] = {}
    for (topic, partition, minute), records in by_minute.items():
        counts = _counts(records, keys)
        first = min(record.source.offset for record in records)
        for bucket in Bucket:
            place = (topic, partition, bucket, bucket.floor(minute))
            if (group := grouped.get(place)) is None:
                grouped[place] = _Counted(list(records), _copied(counts), first)
            else:
                group.records += records
                _add_counts(group.counts, counts)
                group.first_offset = min(group.first_offset, first)
    await all_ended(
        *(
            _add_to_document(
                collection,
                topic=topic,
                partition=partition,
                bucket=bucket,
                start=start,
                counted=counted,
                last_offset=last_offsets[(topic, partition)],
                keys=keys,
            )
            for (topic, partition, bucket, start), counted in grouped.items()
        )
    )


async def _add_to_document(
    collection: AsyncCollection[Document],
    *,
    topic: str,
    partition: int,
    bucket: Bucket,
    start: datetime,
    counted: _Counted,
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
        if counted_up_to < counted.first_offset:
            _add_counts(counts, counted.counts)
        else:
            # A replay of records partly counted already: only those past them are added.
            past = [r for r in counted.records if r.source.offset > counted_up_to]
            _add_counts(counts, _counts(past, keys))
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


def _counts(records: Iterable[Any], keys: Keys) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for record in records:
        for dimension, key in keys(record):
            counts[dimension][key] += 1
    return counts


def _copied(counts: dict[str, Counter[str]]) -> dict[str, Counter[str]]:
    return {dimension: Counter(counted) for dimension, counted in counts.items()}


def _add_counts(into: dict[str, Counter[str]], added: dict[str, Counter[str]]) -> None:
    for dimension, counted in added.items():
        into.setdefault(dimension, Counter()).update(counted)


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
