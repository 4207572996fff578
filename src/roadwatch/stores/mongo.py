import builtins
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from roadwatch.domain import Alert, Detection
from roadwatch.rejections import Reason, RecordsRefused, RejectedMessage
from roadwatch.runtime.gathering import all_ended
from roadwatch.stores.detection_store import (
    AlertFilter,
    DetectionFilter,
    DetectionStore,
    Dimension,
    Position,
    TimelineBucket,
    id_conflict,
    largest_first,
)
from roadwatch.stores.mongo_days import DayRemover
from roadwatch.stores.mongo_documents import (
    ALERT_MAX_BYTES,
    ALL_ALERTS,
    DETECTION_MAX_BYTES,
    Document,
    alert_count_keys,
    alert_document,
    alert_of,
    detection_document,
    detection_of,
    detection_query,
    in_window,
    older_than,
    source_of,
)
from roadwatch.stores.mongo_errors import (
    DUPLICATE_KEY,
    TRANSIENT_CODES,
    busy_when_slow,
    insert_new,
    refused_for_the_data_held,
)
from roadwatch.stores.mongo_make_counts import PartitionMakeCounts
from roadwatch.stores.mongo_reading import (
    NEWEST_FIRST,
    by_id,
    lenient_client,
    newest_first,
)
from roadwatch.stores.mongo_time_counts import TimeCounts
from roadwatch.time_buckets import Bucket, cover

log = logging.getLogger(__name__)

# A batch goes in as this many inserts at once: a server that works through one insert's
# documents one by one (FerretDB) is kept busy on several connections.
INSERTS_AT_ONCE = 2


class MongoDetectionStore(DetectionStore):
    """Detections in MongoDB (PyMongo's async API), or anything speaking its protocol.

    Without multi-document transactions, the per-make counts are kept one document per
    source partition (mongo_make_counts), and a day is removed with its counts (mongo_days).
    """

    def __init__(self, url: str, *, query_timeout: float | None = None) -> None:
        # With `query_timeout`, every operation gives up after it (pymongo's timeoutMS), and
        # the server is told so (maxTimeMS); so does each read as a whole (busy_when_slow).
        self._query_timeout = query_timeout
        bounded: dict[str, Any] = {}
        if query_timeout is not None:
            bounded["timeoutMS"] = int(query_timeout * 1000)
        self._client = lenient_client(url, serverSelectionTimeoutMS=5000, **bounded)
        database = self._client.get_default_database(default="roadwatch")
        self._detections: AsyncCollection[Document] = database["detections"]
        self._make_counts = PartitionMakeCounts(database["make_counts"])
        self._alerts: AsyncCollection[Document] = database["alerts"]
        self._time_counts = TimeCounts(database, "time_counts")
        self._alert_time_counts = TimeCounts(database, "alert_time_counts")
        self._days = DayRemover(
            removed=database["removed_counts"],
            counts=self._time_counts,
            # Every collection whose documents are dated, with the field of their date.
            dated=[(self._detections, "timestamp"), (self._alerts, "timestamp")],
            counted=[self._time_counts, self._alert_time_counts],
        )

    async def open(self) -> None:
        await self._detections.create_index(NEWEST_FIRST, name="newest")
        for field in ("make", "model", "category", "year"):
            await self._detections.create_index(
                [(field, ASCENDING), *NEWEST_FIRST], name=f"{field}_newest"
            )

        await self._alerts.create_index(NEWEST_FIRST, name="newest")
        await self._alerts.create_index(
            [("rule_ids", ASCENDING), *NEWEST_FIRST], name="rule_newest"
        )
        for counts in (self._time_counts, self._alert_time_counts):
            await counts.adopt_unsplit()

    async def close(self) -> None:
        await self._client.close()

    async def ping(self) -> None:
        await self._client.admin.command("ping")

    async def save(self, batch: Sequence[Detection]) -> int:
        if not batch:
            return 0
        documents = [detection_document(detection) for detection in batch]
        size = -(-len(documents) // INSERTS_AT_ONCE)
        found = await all_ended(
            *(
                insert_new(self._detections, documents[start : start + size], start)
                for start in range(0, len(documents), size)
            )
        )
        duplicates: set[int] = set().union(*(duplicate for duplicate, _refused in found))
        refused = {index: why for _duplicate, by_index in found for index, why in by_index.items()}
        replays, held = await self._sort_duplicates([(i, batch[i]) for i in sorted(duplicates)])
        if refused or held:
            # What did go in is counted when the rest is saved again, as a replay.
            raise RecordsRefused(
                f"{len(refused) + len(held)} detection(s) refused",
                reason=Reason.ID_CONFLICT if held and not refused else Reason.STORE_REFUSED,
                culprits={**held, **refused},
            )
        stored_by_this_record = [
            detection for index, detection in enumerate(batch) if index not in duplicates
        ]
        stored_by_this_record += replays
        await self._make_counts.add(batch, stored_by_this_record)
        await self._time_counts.add(
            batch,
            stored_by_this_record,
            time_of=lambda d: d.timestamp,
            keys=lambda d: ((Dimension.MAKE.value, d.make), (Dimension.CATEGORY.value, d.category)),
        )
        return len(batch) - len(duplicates)

    async def _sort_duplicates(
        self, duplicates: list[tuple[int, Detection]]
    ) -> tuple[list[Detection], dict[int, RejectedMessage]]:
        """The duplicates that an earlier attempt at this very record stored (replays), and
        by index those whose id a detection from another record holds."""
        if not duplicates:
            return [], {}
        ids = [str(d.id) for _i, d in duplicates]
        # A holder that is not what roadwatch writes is a conflict like another.
        found, unreadable = await by_id(self._detections, ids, DETECTION_MAX_BYTES, {"source": 1})
        holders = {id: source_of(document.get("source")) for id, document in found.items()}
        replays, conflicts = [], {}
        for index, detection in duplicates:
            holder = holders.get(str(detection.id))
            if holder == detection.source:
                replays.append(detection)
            elif str(detection.id) in holders or unreadable:
                conflicts[index] = id_conflict(detection.id, detection.source, holder)
        return replays, conflicts

    async def save_alerts(self, alerts: Sequence[Alert]) -> int:
        if not alerts:
            return 0
        documents = [alert_document(alert) for alert in alerts]
        kept_already = 0
        try:
            with refused_for_the_data_held("keeping the alert: "):
                await self._alerts.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if error.details.get("writeConcernErrors") or any(
                entry["code"] in TRANSIENT_CODES for entry in errors
            ):
                raise
            refused = [entry for entry in errors if entry["code"] != DUPLICATE_KEY]
            if refused:
                # Refused for what an alert holds: trying again cannot help.
                raise RecordsRefused(
                    f"keeping the alert: MongoDB {refused[0]['code']}: {refused[0].get('errmsg')}"
                ) from error
            # Kept already: a replay, which keeps the alert as it was.
            kept_already = len(errors)
        # An alert's id is its detection's, which no other record holds: every alert here
        # was kept by its own record, and the counts' offsets keep a replay from counting.
        await self._alert_time_counts.add(
            alerts,
            alerts,
            time_of=lambda a: a.detection.timestamp,
            keys=alert_count_keys,
        )
        return len(documents) - kept_already

    async def alerts(
        self,
        where: AlertFilter = AlertFilter(),  # noqa: B008
        *,
        limit: int = 50,
        after: Position | None = None,
    ) -> builtins.list[Alert]:
        query = in_window(where.since, where.until)
        if where.rule is not None:
            query["rule_ids"] = str(where.rule)
        if after is not None:
            query = {"$and": [query, older_than(after)]} if query else older_than(after)
        with busy_when_slow(self._query_timeout):
            return await newest_first(
                self._alerts, query, skip=0, limit=limit, shape=alert_of, max_bytes=ALERT_MAX_BYTES
            )

    async def count_by_make(self) -> dict[str, int]:
        with busy_when_slow(self._query_timeout):
            totals = await self._make_counts.totals()
            totals.subtract(await self._days.removed_per_make())
        return largest_first({make: n for make, n in totals.items() if n > 0})

    async def count_by_category(self) -> dict[str, int]:
        with busy_when_slow(self._query_timeout):
            totals = await self._time_counts.of_every_day(Dimension.CATEGORY.value)
        return largest_first({category: n for category, n in totals.items() if n > 0})

    async def counts_between(
        self, by: Dimension, since: datetime, until: datetime
    ) -> dict[str, int]:
        with busy_when_slow(self._query_timeout):
            per_start = await self._time_counts.sums(cover(since, until), by.value)
        totals: Counter[str] = Counter()
        for counts in per_start.values():
            totals.update(counts)
        return largest_first({make: n for make, n in totals.items() if n > 0})

    async def timeline(
        self, *, bucket: Bucket, since: datetime, until: datetime, by: Dimension
    ) -> builtins.list[TimelineBucket]:
        starts = list(bucket.starts(since, until))
        if not starts:
            return []
        span = [(bucket, starts[0], starts[-1] + bucket.length)]
        with busy_when_slow(self._query_timeout):
            counts = await self._time_counts.sums(span, by.value)
            alerts = await self._alert_time_counts.sums(span, ALL_ALERTS[0])
        return [
            TimelineBucket(
                start,
                largest_first(dict(counts.get(start, {}))),
                alerts.get(start, Counter())[ALL_ALERTS[1]],
            )
            for start in starts
        ]

    async def prepare_days(self, days: Iterable[date]) -> None:
        """Nothing to prepare: a collection takes any time."""

    async def drop_days_before(self, day: date) -> builtins.list[date]:
        return await self._days.drop_before(day)

    async def group_by_make(self) -> dict[str, int]:
        pipeline: list[Document] = [{"$group": {"_id": "$make", "count": {"$sum": 1}}}]
        cursor = await self._detections.aggregate(pipeline)
        return largest_first({row["_id"]: int(row["count"]) async for row in cursor})

    async def count(
        self,
        where: DetectionFilter = DetectionFilter(),  # noqa: B008
        *,
        cap: int | None = None,
    ) -> int:
        limit: dict[str, Any] = {} if cap is None else {"limit": cap + 1}
        with busy_when_slow(self._query_timeout):
            return await self._detections.count_documents(detection_query(where), **limit)

    async def list(
        self,
        where: DetectionFilter = DetectionFilter(),  # noqa: B008
        *,
        skip: int = 0,
        limit: int = 50,
        after: Position | None = None,
    ) -> list[Detection]:
        query = detection_query(where)
        if after is not None:
            query = {"$and": [query, older_than(after)]} if query else older_than(after)
        with busy_when_slow(self._query_timeout):
            return await newest_first(
                self._detections,
                query,
                skip=skip,
                limit=limit,
                shape=detection_of,
                max_bytes=DETECTION_MAX_BYTES,
            )
