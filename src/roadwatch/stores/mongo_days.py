"""Retention in MongoDB: whole days removed, with the per-make counts kept exact, without
multi-document transactions.

The per-make counts are kept per source partition (they know a record by its offset), so
they cannot simply lose what a day held. What was removed is counted apart, in one document
({"_id": "make", "version", "counts", "subtracted"}), which the per-make counts subtract.
"""

from collections import Counter
from datetime import date
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from roadwatch.stores import mongo_time_counts
from roadwatch.stores.detection_store import Dimension
from roadwatch.stores.mongo_time_counts import TimeCounts
from roadwatch.time_buckets import day_start

Document = dict[str, Any]


class DayRemover:
    def __init__(
        self,
        *,
        removed: AsyncCollection[Document],
        counts: TimeCounts,
        dated: list[tuple[AsyncCollection[Document], str]],
        counted: list[TimeCounts],
    ) -> None:
        """`counts` holds the detections' day counts; `dated` the collections whose
        documents are dated, with the field of their date; `counted` the counts to drop."""
        self._removed = removed
        self._counts = counts
        self._dated = dated
        self._counted = counted

    async def removed_per_make(self) -> Counter[str]:
        """What removed days held, per make."""
        removed = await self._removed.find_one({"_id": "make"})
        return mongo_time_counts.as_counter((removed or {}).get("counts") or [])

    async def drop_before(self, day: date) -> list[date]:
        """Remove every document dated before `day`; return the days whose counts went.

        In steps that each may run again after a crash: what was removed first grows by the
        days' own per-day counts, each count document once (the record names those it has
        added, until they are gone); then the documents go. Between two steps a reader may
        see a count low by a day that is about to go.
        """
        cutoff = day_start(day)
        removed = await self._removed.find_one({"_id": "make"})
        version = 0 if removed is None else int(removed["version"])
        subtracted = set((removed or {}).get("subtracted") or [])
        totals = mongo_time_counts.as_counter((removed or {}).get("counts") or [])
        expired, newly = set(), []
        async for document in self._counts.days_before(cutoff):
            expired.add(document["start"].date())
            if document["_id"] not in subtracted:
                totals.update(mongo_time_counts.counts_of(document, Dimension.MAKE.value))
                newly.append(document["_id"])
        if not expired and not subtracted:
            # No day before the cut was counted, so none holds a document: each stored
            # detection is counted in its day before it is done. FerretDB would filter
            # every document by time in its own code, one by one (11 s over 200,000
            # detections), at every upkeep, to find nothing.
            return []
        if newly:
            subtracted |= set(newly)
            version = await self._swap(version, totals, subtracted)
        for collection, field in self._dated:
            await collection.delete_many({field: {"$lt": cutoff}})
        for counts in self._counted:
            await counts.drop_before(cutoff)
        if subtracted:
            await self._swap(version, totals, set())
        return sorted(expired)

    async def _swap(self, version: int, totals: Counter[str], subtracted: set[str]) -> int:
        """Replace the record of what was removed, if no other process has since."""
        replacement = {
            "_id": "make",
            "version": version + 1,
            "counts": mongo_time_counts.as_entries(totals),
            "subtracted": sorted(subtracted),
        }
        if version == 0:
            await self._removed.insert_one(replacement)
        else:
            swapped = await self._removed.replace_one(
                {"_id": "make", "version": version}, replacement
            )
            if swapped.matched_count == 0:
                raise RuntimeError("another process is removing days too; this one stops")
        return version + 1
