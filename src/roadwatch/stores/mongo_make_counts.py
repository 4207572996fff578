"""The per-make counts in MongoDB, kept exactly without multi-document transactions.

One document per source partition holds its counts and the offset up to which it has
counted: a batch replayed after a crash finds its records counted already and adds
nothing, and one update of a single document is atomic everywhere.
"""

from collections import Counter, defaultdict
from collections.abc import Sequence

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from roadwatch.domain import Detection
from roadwatch.stores.mongo_documents import Document
from roadwatch.stores.mongo_time_counts import as_counter

COUNT_UPDATE_ATTEMPTS = 20


class PartitionMakeCounts:
    def __init__(self, collection: AsyncCollection[Document]) -> None:
        self._collection = collection

    async def totals(self) -> Counter[str]:
        """Every partition's counts, summed."""
        totals: Counter[str] = Counter()
        async for document in self._collection.find({}):
            totals.update(counter_of(document.get("counts")))
        return totals

    async def add(self, batch: Sequence[Detection], stored: list[Detection]) -> None:
        """Count the makes of `stored`, the detections of `batch` that this very batch
        stored, in each source partition not counted up to the batch's end already."""
        last_offsets: dict[tuple[str, int], int] = {}
        for detection in batch:
            key = (detection.source.topic, detection.source.partition)
            last_offsets[key] = max(last_offsets.get(key, -1), detection.source.offset)
        by_partition: dict[tuple[str, int], list[Detection]] = defaultdict(list)
        for detection in stored:
            by_partition[(detection.source.topic, detection.source.partition)].append(detection)
        for key, last_offset in last_offsets.items():
            await self._add_to_partition(key, by_partition[key], last_offset)

    async def _add_to_partition(
        self, key: tuple[str, int], stored: list[Detection], last_offset: int
    ) -> None:
        document_id = f"{key[0]}:{key[1]}"
        for _attempt in range(COUNT_UPDATE_ATTEMPTS):
            current = await self._collection.find_one({"_id": document_id})
            counted_up_to = -1 if current is None else int(current["upto"])
            if last_offset <= counted_up_to:
                return
            counts = counter_of((current or {}).get("counts", []))
            counts.update(d.make for d in stored if d.source.offset > counted_up_to)
            replacement = {
                "_id": document_id,
                "upto": last_offset,
                "counts": [{"make": make, "n": n} for make, n in sorted(counts.items())],
            }
            if current is None:
                try:
                    await self._collection.insert_one(replacement)
                    return
                except DuplicateKeyError:
                    continue
            result = await self._collection.replace_one(
                {"_id": document_id, "upto": counted_up_to}, replacement
            )
            if result.matched_count == 1:
                return
        raise RuntimeError(f"could not update the counts of {document_id}: too much contention")


def counter_of(entries: object) -> Counter[str]:
    return as_counter(entries, key="make")
