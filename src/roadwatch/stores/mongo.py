import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError

from roadwatch.domain import Detection, Source
from roadwatch.stores.base import DetectionFilter, DetectionStore, Position, largest_first

log = logging.getLogger(__name__)

Document = dict[str, Any]
DUPLICATE_KEY = 11000
NEWEST_FIRST = [("timestamp", DESCENDING), ("_id", DESCENDING)]
COUNT_UPDATE_ATTEMPTS = 20
# A batch goes in as this many inserts at once: a server that works through one insert's
# documents one by one (FerretDB) is kept busy on several connections.
INSERTS_AT_ONCE = 2


class MongoDetectionStore(DetectionStore):
    """Detections in MongoDB (PyMongo's async API), or anything speaking its protocol.

    Without multi-document transactions, the per-make counts are kept one document per
    source partition, each with the offset up to which it has counted: a batch replayed after
    a crash finds its records counted already and adds nothing, and one update of a single
    document is atomic everywhere.
    """

    def __init__(self, url: str) -> None:
        self._client: AsyncMongoClient[Document] = AsyncMongoClient(
            url, tz_aware=True, serverSelectionTimeoutMS=5000
        )
        database = self._client.get_default_database(default="roadwatch")
        self._detections: AsyncCollection[Document] = database["detections"]
        self._counts: AsyncCollection[Document] = database["make_counts"]

    async def open(self) -> None:
        await self._detections.create_index(NEWEST_FIRST, name="newest")
        for field in ("make", "category", "year"):
            await self._detections.create_index(
                [(field, ASCENDING), *NEWEST_FIRST], name=f"{field}_newest"
            )

    async def close(self) -> None:
        await self._client.close()

    async def ping(self) -> None:
        await self._client.admin.command("ping")

    async def save(self, batch: Sequence[Detection]) -> int:
        if not batch:
            return 0
        documents = [_document(detection) for detection in batch]
        size = -(-len(documents) // INSERTS_AT_ONCE)
        found = await asyncio.gather(
            *(
                self._insert(documents[start : start + size], start)
                for start in range(0, len(documents), size)
            )
        )
        duplicates: set[int] = set().union(*found)
        stored_by_this_record = [
            detection for index, detection in enumerate(batch) if index not in duplicates
        ]
        if duplicates:
            stored_by_this_record += await self._stored_earlier_from_same_record(
                [batch[index] for index in sorted(duplicates)]
            )
        await self._count(batch, stored_by_this_record)
        return len(batch) - len(duplicates)

    async def _insert(self, documents: list[Document], first_index: int) -> set[int]:
        """Insert what is not stored yet; return the batch indexes of the duplicates."""
        try:
            await self._detections.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if any(entry["code"] != DUPLICATE_KEY for entry in errors):
                raise
            return {first_index + entry["index"] for entry in errors}
        return set()

    async def _stored_earlier_from_same_record(
        self, duplicates: list[Detection]
    ) -> list[Detection]:
        """The duplicates that an earlier attempt at this very record stored (a replay)."""
        found = self._detections.find(
            {"_id": {"$in": [str(d.id) for d in duplicates]}}, {"source": 1}
        )
        sources = {document["_id"]: document["source"] async for document in found}
        return [d for d in duplicates if sources.get(str(d.id)) == _source_document(d.source)]

    async def _count(self, batch: Sequence[Detection], stored: list[Detection]) -> None:
        last_offsets: dict[tuple[str, int], int] = {}
        for detection in batch:
            key = (detection.source.topic, detection.source.partition)
            last_offsets[key] = max(last_offsets.get(key, -1), detection.source.offset)
        by_partition: dict[tuple[str, int], list[Detection]] = defaultdict(list)
        for detection in stored:
            by_partition[(detection.source.topic, detection.source.partition)].append(detection)
        for key, last_offset in last_offsets.items():
            await self._count_partition(key, by_partition[key], last_offset)

    async def _count_partition(
        self, key: tuple[str, int], stored: list[Detection], last_offset: int
    ) -> None:
        document_id = f"{key[0]}:{key[1]}"
        for _attempt in range(COUNT_UPDATE_ATTEMPTS):
            current = await self._counts.find_one({"_id": document_id})
            counted_up_to = -1 if current is None else int(current["upto"])
            if last_offset <= counted_up_to:
                return
            counts = _counter((current or {}).get("counts", []))
            counts.update(d.make for d in stored if d.source.offset > counted_up_to)
            replacement = {
                "_id": document_id,
                "upto": last_offset,
                "counts": [{"make": make, "n": n} for make, n in sorted(counts.items())],
            }
            if current is None:
                try:
                    await self._counts.insert_one(replacement)
                    return
                except DuplicateKeyError:
                    continue
            result = await self._counts.replace_one(
                {"_id": document_id, "upto": counted_up_to}, replacement
            )
            if result.matched_count == 1:
                return
        raise RuntimeError(f"could not update the counts of {document_id}: too much contention")

    async def count_by_make(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        async for document in self._counts.find({}):
            totals.update(_counter(document["counts"]))
        return largest_first({make: n for make, n in totals.items() if n > 0})

    async def group_by_make(self) -> dict[str, int]:
        pipeline: list[Document] = [{"$group": {"_id": "$make", "count": {"$sum": 1}}}]
        cursor = await self._detections.aggregate(pipeline)
        return largest_first({row["_id"]: int(row["count"]) async for row in cursor})

    async def count(self, where: DetectionFilter = DetectionFilter()) -> int:  # noqa: B008
        return await self._detections.count_documents(_query(where))

    async def list(
        self,
        where: DetectionFilter = DetectionFilter(),  # noqa: B008
        *,
        skip: int = 0,
        limit: int = 50,
        after: Position | None = None,
    ) -> list[Detection]:
        query = _query(where)
        if after is not None:
            before = {
                "$or": [
                    {"timestamp": {"$lt": after.timestamp}},
                    {"timestamp": after.timestamp, "_id": {"$lt": str(after.id)}},
                ]
            }
            query = {"$and": [query, before]} if query else before
        found = self._detections.find(query).sort(NEWEST_FIRST).skip(skip).limit(limit)
        return [_detection(document) async for document in found]


def _counter(entries: list[Document]) -> Counter[str]:
    return Counter({entry["make"]: entry["n"] for entry in entries})


def _source_document(source: Source) -> Document:
    return {"topic": source.topic, "partition": source.partition, "offset": source.offset}


def _document(detection: Detection) -> Document:
    return {
        # A UUID's text sorts as its bytes do, so ties break as they do in PostgreSQL.
        "_id": str(detection.id),
        "timestamp": detection.timestamp,
        "year": detection.year,
        "make": detection.make,
        "model": detection.model,
        "category": detection.category,
        "source": _source_document(detection.source),
    }


def _detection(document: Document) -> Detection:
    source = document["source"]
    return Detection(
        id=UUID(document["_id"]),
        timestamp=document["timestamp"],
        year=document["year"],
        make=document["make"],
        model=document["model"],
        category=document["category"],
        source=Source(source["topic"], source["partition"], source["offset"]),
    )


def _query(where: DetectionFilter) -> Document:
    # Values are compared as plain values: a string shaped like an operator stays a string.
    query: Document = {
        field: value
        for field in ("make", "model", "category", "year")
        if (value := getattr(where, field)) is not None
    }
    time_range: Document = {}
    if where.since is not None:
        time_range["$gte"] = where.since
    if where.until is not None:
        time_range["$lt"] = where.until
    if time_range:
        query["timestamp"] = time_range
    return query
