import asyncio
import builtins
import contextlib
import logging
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any
from uuid import UUID

from bson.errors import BSONError
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DocumentTooLarge,
    DuplicateKeyError,
    OperationFailure,
    PyMongoError,
)

from roadwatch.domain import Alert, Detection, RuleRef, Source
from roadwatch.rejections import Reason, RecordsRefused, RejectedMessage
from roadwatch.stores import mongo_time_counts
from roadwatch.stores.base import (
    AlertFilter,
    DetectionFilter,
    DetectionStore,
    Dimension,
    Position,
    StoreBusy,
    StoreUnreachable,
    TimelineBucket,
    id_conflict,
    largest_first,
)
from roadwatch.stores.mongo_days import DayRemover
from roadwatch.time_buckets import Bucket, cover

log = logging.getLogger(__name__)

Document = dict[str, Any]
DUPLICATE_KEY = 11000
# Codes of a server that is stepping down, shutting down, or timing out: try again.
TRANSIENT_CODES = {6, 7, 50, 89, 91, 112, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436}
# Codes of a write refused for the values it holds: bad value, type mismatch, a field named
# like an operator, a failed validation, a document or index key too large.
DATA_CODES = {2, 14, 52, 121, 10334, 17280}
# FerretDB passes on its PostgreSQL's refusals, SQLSTATE and all: data exceptions (22),
# integrity violations (23) and values beyond a limit (54) are the data's fault.
POSTGRES_DATA_ERROR = re.compile(r"SQLSTATE (22|23|54)[0-9A-Z]{3}")
NEWEST_FIRST = [("timestamp", DESCENDING), ("_id", DESCENDING)]
COUNT_UPDATE_ATTEMPTS = 20
# A batch goes in as this many inserts at once: a server that works through one insert's
# documents one by one (FerretDB) is kept busy on several connections.
INSERTS_AT_ONCE = 2
# Alerts are counted once in all, under this (dimension, key), and once per rule matched.
ALL_ALERTS = ("alerts", "all")


class MongoDetectionStore(DetectionStore):
    """Detections in MongoDB (PyMongo's async API), or anything speaking its protocol.

    Without multi-document transactions, the per-make counts are kept one document per
    source partition, each with the offset up to which it has counted: a batch replayed after
    a crash finds its records counted already and adds nothing, and one update of a single
    document is atomic everywhere.
    """

    def __init__(self, url: str, *, query_timeout: float | None = None) -> None:
        # With `query_timeout`, every operation gives up after it (pymongo's timeoutMS), and
        # the server is told so (maxTimeMS).
        bounded: dict[str, Any] = {}
        if query_timeout is not None:
            bounded["timeoutMS"] = int(query_timeout * 1000)
        self._client: AsyncMongoClient[Document] = AsyncMongoClient(
            url, tz_aware=True, serverSelectionTimeoutMS=5000, **bounded
        )
        database = self._client.get_default_database(default="roadwatch")
        self._detections: AsyncCollection[Document] = database["detections"]
        self._counts: AsyncCollection[Document] = database["make_counts"]
        self._alerts: AsyncCollection[Document] = database["alerts"]
        self._time_counts: AsyncCollection[Document] = database["time_counts"]
        self._alert_time_counts: AsyncCollection[Document] = database["alert_time_counts"]
        self._days = DayRemover(
            removed=database["removed_counts"],
            counts=self._time_counts,
            # Every collection whose documents are dated, with the field of their date.
            dated=[
                (self._time_counts, "start"),
                (self._alert_time_counts, "start"),
                (self._detections, "timestamp"),
                (self._alerts, "timestamp"),
            ],
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
            await counts.create_index([("bucket", ASCENDING), ("start", ASCENDING)], name="bucket")

    async def close(self) -> None:
        await self._client.close()

    async def ping(self) -> None:
        await self._client.admin.command("ping")

    async def save(self, batch: Sequence[Detection]) -> int:
        if not batch:
            return 0
        documents = [_document(detection) for detection in batch]
        size = -(-len(documents) // INSERTS_AT_ONCE)
        # Every insert ends before a failure is raised: none may still run when the batch
        # is saved again.
        outcomes = await asyncio.gather(
            *(
                self._insert(documents[start : start + size], start)
                for start in range(0, len(documents), size)
            ),
            return_exceptions=True,
        )
        found = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            found.append(outcome)
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
        await self._count(batch, stored_by_this_record)
        await mongo_time_counts.add(
            self._time_counts,
            batch,
            stored_by_this_record,
            time_of=lambda d: d.timestamp,
            keys=lambda d: ((Dimension.MAKE.value, d.make), (Dimension.CATEGORY.value, d.category)),
        )
        return len(batch) - len(duplicates)

    async def _insert(
        self, documents: list[Document], first_index: int
    ) -> tuple[set[int], dict[int, RejectedMessage]]:
        """Insert what is not stored yet; return the batch indexes of the duplicates, and
        of the documents the server refused, with why."""
        try:
            with _refused_for_the_data_held():
                await self._detections.insert_many(documents, ordered=False)
        except BulkWriteError as error:
            if error.details.get("writeConcernErrors"):
                raise
            duplicates, refused = set(), {}
            for entry in error.details.get("writeErrors", []):
                index = first_index + entry["index"]
                code, message = entry["code"], str(entry.get("errmsg"))
                if code == DUPLICATE_KEY:
                    duplicates.add(index)
                elif code in TRANSIENT_CODES:
                    raise
                else:
                    refused[index] = RejectedMessage(
                        Reason.STORE_REFUSED, f"MongoDB {code}: {message}"
                    )
            return duplicates, refused
        return set(), {}

    async def _sort_duplicates(
        self, duplicates: list[tuple[int, Detection]]
    ) -> tuple[list[Detection], dict[int, RejectedMessage]]:
        """The duplicates that an earlier attempt at this very record stored (replays), and
        by index those whose id a detection from another record holds."""
        if not duplicates:
            return [], {}
        found = self._detections.find(
            {"_id": {"$in": [str(d.id) for _i, d in duplicates]}}, {"source": 1}
        )
        sources = {document["_id"]: document["source"] async for document in found}
        replays, conflicts = [], {}
        for index, detection in duplicates:
            holder = sources.get(str(detection.id))
            if holder == _source_document(detection.source):
                replays.append(detection)
            elif holder is not None:
                conflicts[index] = id_conflict(
                    detection.id,
                    detection.source,
                    Source(holder["topic"], holder["partition"], holder["offset"]),
                )
        return replays, conflicts

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

    async def save_alerts(self, alerts: Sequence[Alert]) -> int:
        if not alerts:
            return 0
        documents = [_alert_document(alert) for alert in alerts]
        kept_already = 0
        try:
            with _refused_for_the_data_held("keeping the alert: "):
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
        await mongo_time_counts.add(
            self._alert_time_counts,
            alerts,
            alerts,
            time_of=lambda a: a.detection.timestamp,
            keys=_alert_keys,
        )
        return len(documents) - kept_already

    async def alerts(
        self,
        where: AlertFilter = AlertFilter(),  # noqa: B008
        *,
        limit: int = 50,
        after: Position | None = None,
    ) -> builtins.list[Alert]:
        query = _in_window(where.since, where.until)
        if where.rule is not None:
            query["rule_ids"] = str(where.rule)
        if after is not None:
            query = {"$and": [query, _before(after)]} if query else _before(after)
        found = self._alerts.find(query).sort(NEWEST_FIRST).limit(limit)
        with _busy_when_slow():
            return [_alert(document) async for document in found]

    async def count_by_make(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        with _busy_when_slow():
            async for document in self._counts.find({}):
                totals.update(_counter(document["counts"]))
            totals.subtract(await self._days.removed_per_make())
        return largest_first({make: n for make, n in totals.items() if n > 0})

    async def makes_between(self, since: datetime, until: datetime) -> dict[str, int]:
        with _busy_when_slow():
            per_start = await mongo_time_counts.sums(
                self._time_counts, cover(since, until), Dimension.MAKE.value
            )
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
        with _busy_when_slow():
            counts = await mongo_time_counts.sums(self._time_counts, span, by.value)
            alerts = await mongo_time_counts.sums(self._alert_time_counts, span, ALL_ALERTS[0])
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
        with _busy_when_slow():
            return await self._detections.count_documents(_query(where), **limit)

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
            query = {"$and": [query, _before(after)]} if query else _before(after)
        found = self._detections.find(query).sort(NEWEST_FIRST).skip(skip).limit(limit)
        with _busy_when_slow():
            return [_detection(document) async for document in found]


@contextlib.contextmanager
def _busy_when_slow() -> Iterator[None]:
    try:
        yield
    except PyMongoError as error:
        if error.timeout:
            raise StoreBusy(f"the query took longer than allowed: {error}") from None
        if isinstance(error, ConnectionFailure):
            raise StoreUnreachable(f"the database cannot be reached: {error}") from None
        raise


@contextlib.contextmanager
def _refused_for_the_data_held(what: str = "") -> Iterator[None]:
    """RecordsRefused for a write refused for what its documents hold, which no retry mends:
    an encoding error (raised before anything reached the server), or the server's."""
    try:
        yield
    except BulkWriteError:
        raise
    except (BSONError, UnicodeError, DocumentTooLarge) as error:
        raise RecordsRefused(f"{what}{type(error).__name__}: {error}") from error
    except OperationFailure as error:
        if _refused_for_the_data(error):
            raise RecordsRefused(f"{what}MongoDB {error.code}: {error}") from error
        raise


def _refused_for_the_data(error: OperationFailure) -> bool:
    if error.code in TRANSIENT_CODES or error.has_error_label("RetryableWriteError"):
        return False
    return error.code in DATA_CODES or bool(POSTGRES_DATA_ERROR.search(str(error)))


def _counter(entries: list[Document]) -> Counter[str]:
    return Counter({entry["make"]: entry["n"] for entry in entries})


def _alert_keys(alert: Alert) -> list[tuple[str, str]]:
    return [ALL_ALERTS, *(("rule", str(rule.id)) for rule in alert.rules)]


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


def _before(position: Position) -> Document:
    return {
        "$or": [
            {"timestamp": {"$lt": position.timestamp}},
            {"timestamp": position.timestamp, "_id": {"$lt": str(position.id)}},
        ]
    }


def _alert_document(alert: Alert) -> Document:
    return {
        **_document(alert.detection),
        "rules": [{"id": str(rule.id), "name": rule.name} for rule in alert.rules],
        "rule_ids": [str(rule.id) for rule in alert.rules],
    }


def _alert(document: Document) -> Alert:
    rules = tuple(RuleRef(UUID(rule["id"]), rule["name"]) for rule in document["rules"])
    return Alert(_detection(document), rules)


def _query(where: DetectionFilter) -> Document:
    # Values are compared as plain values: a string shaped like an operator stays a string.
    query = _in_window(where.since, where.until)
    query.update(
        (field, value)
        for field in ("make", "model", "category", "year")
        if (value := getattr(where, field)) is not None
    )
    return query


def _in_window(since: datetime | None, until: datetime | None) -> Document:
    time_range: Document = {}
    if since is not None:
        time_range["$gte"] = since
    if until is not None:
        time_range["$lt"] = until
    return {"timestamp": time_range} if time_range else {}
