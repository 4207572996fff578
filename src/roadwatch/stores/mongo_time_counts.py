"""The counts over time in MongoDB, kept exact without multi-document transactions.

As with the per-make counts, each count document belongs to one source partition and says
up to which offset it has counted: a document per (source partition, bucket, start), for
minutes, hours and days. A batch adds to a document only what lies past its offset, in one
conditional replace, so a batch replayed after a crash adds nothing twice.

Each period's documents live in a collection of their own (mongo_count_periods). FerretDB
serves no query from an index: every lookup and conditional replace reads its whole
collection. With every document in one collection, a batch's counts cost more with each day
kept (a batch of 1,000 detections took 0.2 s to save into an empty store, 1.0 s beside a
day of counts, 2.5 s beside three). In a collection per period, a lookup reads at most 60
documents a source partition, however long the store has run.
"""

import contextlib
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from roadwatch.domain import FromRecord
from roadwatch.runtime.gathering import all_ended
from roadwatch.stores.mongo_count_periods import (
    Period,
    collection_name,
    parse_name,
    period_of,
    periods,
)
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


class TimeCounts:
    """The counts over time of one kind (detections, alerts): `kind` names its collections."""

    def __init__(self, database: AsyncDatabase[Document], kind: str) -> None:
        self._database = database
        self._kind = kind

    def _collection(self, period: Period) -> AsyncCollection[Document]:
        return self._database[collection_name(self._kind, period)]

    async def add(
        self,
        batch: Sequence[FromRecord],
        stored: Sequence[Any],
        *,
        time_of: Callable[[Any], datetime],
        keys: Keys,
    ) -> None:
        """Count what `stored` (the records of `batch` stored by their own record) adds to
        each (source partition, bucket, start) document, past the offset it has reached."""
        last_offsets: dict[tuple[str, int], int] = {}
        for record in batch:
            key = (record.source.topic, record.source.partition)
            last_offsets[key] = max(last_offsets.get(key, -1), record.source.offset)
        # Each record is counted once, in its minute; hours and days add up their minutes.
        by_minute: dict[tuple[str, int, datetime], list[Any]] = defaultdict(list)
        for record in stored:
            source = record.source
            minute = Bucket.MINUTE.floor(time_of(record))
            by_minute[(source.topic, source.partition, minute)].append(record)
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
                    self._collection(period_of(bucket, start)),
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

    async def sums(
        self, ranges: Iterable[tuple[Bucket, datetime, datetime]], dimension: str
    ) -> dict[datetime, Counter[str]]:
        """Per bucket start, the counts of `dimension` over every source partition."""
        totals: dict[datetime, Counter[str]] = defaultdict(Counter)
        for bucket, first, end in ranges:
            for period in periods(bucket, first, end):
                async for document in self._documents(period, first, end, dimension):
                    if isinstance(start := document.get("start"), datetime):
                        totals[start].update(counts_of(document, dimension))
        return totals

    async def of_every_day(self, dimension: str) -> Counter[str]:
        """The counts of `dimension` over every day held: a document a source partition a
        day."""
        totals: Counter[str] = Counter()
        for period in await self._held():
            if period.bucket is Bucket.DAY:
                found = self._collection(period).find({}, {f"counts.{dimension}": 1})
                async for document in found:
                    totals.update(counts_of(document, dimension))
        return totals

    async def days_before(self, cutoff: datetime) -> AsyncIterator[Document]:
        """The day documents of days before `cutoff`, with their per-make counts."""
        for period in sorted(await self._held(), key=lambda p: p.start):
            if period.bucket is Bucket.DAY and period.start < cutoff:
                async for document in self._documents(period, period.start, cutoff, "make"):
                    yield document

    async def drop_before(self, cutoff: datetime) -> None:
        """Remove every document of a bucket that starts before `cutoff`, a day's start."""
        for period in await self._held():
            if period.end <= cutoff:
                await self._collection(period).drop()
            elif period.start < cutoff:
                await self._collection(period).delete_many({"start": {"$lt": cutoff}})

    async def adopt_unsplit(self) -> None:
        """Move the documents of a store that kept them all in one collection, named `kind`,
        into their periods' collections. Safe to run again, or beside another process: a
        document is only ever inserted where none is, and the old collection goes last."""
        if self._kind not in await self._database.list_collection_names():
            return
        unsplit = self._database[self._kind]
        try:
            async for document in unsplit.find({}):
                period = period_of(Bucket(document["bucket"]), document["start"])
                with contextlib.suppress(DuplicateKeyError):  # moved, perhaps counted on since
                    await self._collection(period).insert_one(document)
        except OperationFailure:
            if self._kind in await self._database.list_collection_names():
                raise
            return  # dropped under the cursor: another process moved them all
        await unsplit.drop()

    async def _held(self) -> list[Period]:
        names = await self._database.list_collection_names()
        return [period for name in names if (period := parse_name(self._kind, name))]

    def _documents(
        self, period: Period, first: datetime, end: datetime, dimension: str
    ) -> AsyncIterator[Document]:
        return self._collection(period).find(
            {"start": {"$gte": first, "$lt": end}}, {"start": 1, f"counts.{dimension}": 1}
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
        held = (current or {}).get("counts")
        counts = {
            dimension: as_counter(entries)
            for dimension, entries in (held.items() if isinstance(held, dict) else ())
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


def as_entries(counts: Counter[str]) -> list[Document]:
    # A list of entries, not a mapping: a key is any text, '.' and '$' included.
    return [{"k": key, "n": n} for key, n in sorted(counts.items())]


def as_counter(entries: object, *, key: str = "k") -> Counter[str]:
    """The counts of a list of entries ({key: text, "n": count}); an entry of another shape
    (a document not as roadwatch writes it) counts nothing."""
    counts: Counter[str] = Counter()
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, dict):
            name, n = entry.get(key), entry.get("n")
            if isinstance(name, str) and type(n) is int:
                counts[name] = n
    return counts


def counts_of(document: Document, dimension: str) -> Counter[str]:
    counts = document.get("counts")
    return as_counter(counts.get(dimension) if isinstance(counts, dict) else None)
