"""MongoDB keeps each period's count documents in a collection of its own: a batch's lookups
read only its periods' documents, however many days the store holds. A store that kept
them all in one collection has them moved on opening, and counts on from them."""

import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from roadwatch.bootstrap.stores import detection_store
from roadwatch.domain import Alert, RuleRef
from roadwatch.stores.detection_store import DetectionStore, Dimension, StoreBusy
from roadwatch.stores.mongo_count_periods import collection_name, parse_name, period_of
from roadwatch.stores.mongo_time_counts import TimeCounts
from roadwatch.time_buckets import Bucket
from tests.helpers.factories import make_detection
from tests.helpers.servers import Servers, fresh_mongo_database_url

pytestmark = pytest.mark.mongo

MIDNIGHT = datetime(2024, 5, 3, tzinfo=UTC)
KINDS = ("time_counts", "alert_time_counts")
RULE = RuleRef(uuid.uuid4(), "jeeps")


@pytest.fixture
async def url(servers: Servers) -> str:
    return fresh_mongo_database_url(servers)


@pytest.fixture
async def database(url: str) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True)
    yield client.get_default_database()
    await client.close()


async def opened(url: str) -> DetectionStore:
    store = detection_store(url)
    await store.open()
    return store


def spread() -> list[Any]:
    """Detections over three days, in several minutes and hours of each."""
    return [
        make_detection(timestamp=MIDNIGHT + timedelta(days=d, hours=h, minutes=m), make=make)
        for d in range(3)
        for h in (0, 5, 23)
        for m, make in ((0, "Jeep"), (1, "Kia"), (59, "Jeep"))
    ]


async def test_each_count_document_sits_in_its_periods_collection(
    url: str, database: AsyncDatabase[dict[str, Any]]
) -> None:
    store = await opened(url)
    try:
        batch = spread()
        await store.save(batch)
        await store.save_alerts([Alert(d, (RULE,)) for d in batch if d.make == "Jeep"])
    finally:
        await store.close()

    held: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for name in await database.list_collection_names():
        for kind in KINDS:
            if (period := parse_name(kind, name)) is None:
                continue
            held[kind].append(name)
            async for document in database[name].find({}):
                assert document["bucket"] == period.bucket.value, name
                assert period.start <= document["start"] < period.end, name
    # Three hours on each of three days: 9 hours of minutes, 3 days of hours, 1 month of days.
    assert len(held["time_counts"]) == 9 + 3 + 1
    assert len(held["alert_time_counts"]) == 9 + 3 + 1
    # Nothing is kept in one collection of all times any more.
    assert not set(KINDS) & set(await database.list_collection_names())


async def test_counts_kept_in_one_collection_are_moved_and_counted_on(
    url: str, database: AsyncDatabase[dict[str, Any]]
) -> None:
    first, later = spread(), spread()
    store = await opened(url)
    try:
        await store.save(first)
        await store.save_alerts([Alert(d, (RULE,)) for d in first if d.make == "Jeep"])
    finally:
        await store.close()
    # The layout of before: the same documents, all in one collection per kind.
    for name in await database.list_collection_names():
        for kind in KINDS:
            if parse_name(kind, name) is not None:
                documents = [d async for d in database[name].find({})]
                await database[kind].insert_many(documents)
                await database[name].drop()

    store = await opened(url)
    try:
        assert not set(KINDS) & set(await database.list_collection_names())
        await store.save(later)
        await store.save_alerts([Alert(d, (RULE,)) for d in later if d.make == "Jeep"])
        # A second opening finds nothing left to move, and changes nothing.
        await (await opened(url)).close()

        since, until = MIDNIGHT, MIDNIGHT + timedelta(days=3)
        assert await store.makes_between(since, until) == await store.group_by_make()
        assert await store.makes_between(since, until) == {"Jeep": 36, "Kia": 18}
        by_day = await store.timeline(
            bucket=Bucket.DAY, since=since, until=until, by=Dimension.MAKE
        )
        assert [b.counts for b in by_day] == [{"Jeep": 12, "Kia": 6}] * 3
        assert [b.alerts for b in by_day] == [12, 12, 12]
        two_minutes = MIDNIGHT + timedelta(minutes=2)
        by_minute = await store.timeline(
            bucket=Bucket.MINUTE, since=MIDNIGHT, until=two_minutes, by=Dimension.MAKE
        )
        assert [b.counts for b in by_minute] == [{"Jeep": 2}, {"Kia": 2}]
        assert Counter(d.make for d in first + later) == Counter(await store.count_by_make())
    finally:
        await store.close()


async def test_a_read_of_many_periods_answers_within_the_query_timeout_as_a_whole(
    url: str, database: AsyncDatabase[dict[str, Any]]
) -> None:
    # A day counted in every month since 2000: counts since then read each month's collection,
    # one quick query after another, each far under the timeout and all together over it.
    month, months = datetime(2000, 1, 1, tzinfo=UTC), 0
    while month < datetime(2026, 12, 1, tzinfo=UTC):
        period = period_of(Bucket.DAY, month)
        await database[collection_name("time_counts", period)].insert_one(
            {
                "_id": f"t:0:day:{month.isoformat()}",
                "bucket": "day",
                "start": month,
                "upto": months,
                "counts": {"make": [{"k": "Jeep", "n": 1}]},
            }
        )
        month, months = period.end, months + 1
    since, until = datetime(2000, 1, 1, tzinfo=UTC), month
    patient, hurried = detection_store(url), detection_store(url, query_timeout=0.1)
    await patient.open()
    await hurried.open()
    try:
        assert await patient.makes_between(since, until) == {"Jeep": months}
        with pytest.raises(StoreBusy):
            await hurried.makes_between(since, until)
    finally:
        await patient.close()
        await hurried.close()


class _MovedByAnother(monitoring.CommandListener):
    """Another process's whole move, run as this one asks for the next page of the old
    collection: each document inserted where none is, then the old collection dropped."""

    def __init__(self, url: str, kind: str) -> None:
        self._url, self._kind = url, kind
        self.moved = False

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name != "getMore" or self.moved:
            return
        self.moved = True
        client: MongoClient[dict[str, Any]] = MongoClient(self._url, tz_aware=True)
        with client:
            database: Database[dict[str, Any]] = client.get_default_database()
            for document in database[self._kind].find({}):
                period = period_of(Bucket(document["bucket"]), document["start"])
                with contextlib.suppress(DuplicateKeyError):
                    database[collection_name(self._kind, period)].insert_one(document)
            database.drop_collection(self._kind)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_a_move_that_another_process_finishes_first_ends_quietly(url: str) -> None:
    # More documents than the first page of a query holds (101), over many hours.
    hours = [MIDNIGHT + timedelta(hours=h) for h in range(300)]
    unsplit = [
        {
            "_id": f"t:0:hour:{hour.isoformat()}",
            "bucket": "hour",
            "start": hour,
            "upto": n,
            "counts": {"make": [{"k": "Jeep", "n": 1}]},
        }
        for n, hour in enumerate(hours)
    ]
    other = _MovedByAnother(url, "time_counts")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        url, tz_aware=True, event_listeners=[other]
    )
    try:
        database = client.get_default_database()
        await database["time_counts"].insert_many(unsplit)
        await TimeCounts(database, "time_counts").adopt_unsplit()
        assert other.moved, "the move asked for no second page: nothing ran beside it"
        assert "time_counts" not in await database.list_collection_names()
        moved = await TimeCounts(database, "time_counts").sums(
            [(Bucket.HOUR, hours[0], hours[-1] + timedelta(hours=1))], "make"
        )
        assert moved == {hour: Counter({"Jeep": 1}) for hour in hours}
    finally:
        await client.close()
