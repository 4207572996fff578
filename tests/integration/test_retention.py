"""Retention through the indexer: days past the window are removed whole, records older
than it are dead-lettered, and a replay of old records brings nothing back."""

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
import pytest

from roadwatch.bootstrap.stores import detection_store
from roadwatch.domain import Alert, RuleRef
from roadwatch.stores import postgres_days
from roadwatch.stores.detection_store import DetectionFilter, DetectionStore, Dimension
from roadwatch.time_buckets import Bucket
from tests.helpers.factories import make_detection
from tests.helpers.kafka import header, read_topic, send_values, stream_settings
from tests.helpers.processes import indexer_running
from tests.helpers.servers import Servers
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka]

KEEP_DAYS = 7


def message(at: datetime, make: str, id: uuid.UUID | None = None) -> bytes:
    fields = {"Year": 2011, "Make": make, "Model": "M", "Category": "SUV"}
    return orjson.dumps({**fields, "timestamp": at.isoformat(), "id": str(id or uuid.uuid4())})


async def test_old_days_go_and_records_older_than_the_window_are_dead_lettered(
    servers: Servers, store_url: str
) -> None:
    now = datetime.now(UTC)
    settings = (await stream_settings(servers, store_url=store_url)).model_copy(
        update={"detections_retention_days": KEEP_DAYS}
    )
    store = detection_store(store_url)
    await store.open()
    try:
        # Stored before retention was set: ten days ago, and three.
        ancient = [
            make_detection(timestamp=now - timedelta(days=10), make="Jeep") for _ in range(3)
        ]
        recent = [make_detection(timestamp=now - timedelta(days=3), make="Kia") for _ in range(2)]
        await store.save(ancient + recent)
        await store.save_alerts([Alert(d, (RuleRef(uuid.uuid4(), "r"),)) for d in ancient])

        async with indexer_running(settings) as indexer:
            # The upkeep ran before the first batch.
            assert {d.id for d in await store.list(limit=100)} == {d.id for d in recent}
            assert await store.alerts(limit=100) == []

            stream = [
                # The removed detections, replayed as they were first sent.
                *(message(d.timestamp, d.make, d.id) for d in ancient),
                message(now - timedelta(days=KEEP_DAYS, hours=1), "Ford"),
                message(now - timedelta(days=KEEP_DAYS - 1), "Ford"),
                message(now, "Toyota"),
            ]
            await send_values(servers.kafka, settings.detections_topic, stream)
            dead = await read_topic(servers.kafka, settings.dead_letter_topic, expected=4)
            await eventually(
                lambda: _count_is(store, len(recent) + 2), within=60, what="the two in the window"
            )
            assert not indexer.done()

        assert [header(r, "roadwatch.reason") for r in dead] == [b"expired"] * 4
        assert b"before the retention window" in header(dead[0], "roadwatch.detail")
        assert await store.count(DetectionFilter(until=now - timedelta(days=KEEP_DAYS))) == 0
        assert (
            await store.count_by_make()
            == await store.group_by_make()
            == {"Kia": 2, "Ford": 1, "Toyota": 1}
        )
        since = Bucket.DAY.floor(now - timedelta(days=30))
        until = Bucket.DAY.ceil(now + timedelta(minutes=1))
        assert await store.makes_between(since, until) == await store.group_by_make()
        timeline = await store.timeline(
            bucket=Bucket.DAY, since=since, until=until, by=Dimension.MAKE
        )
        assert sum(sum(b.counts.values()) for b in timeline) == 4
        assert Counter(
            k for b in timeline for k, n in b.counts.items() for _ in range(n)
        ) == Counter(await store.group_by_make())
    finally:
        await store.close()


async def _count_is(store: DetectionStore, expected: int) -> bool:
    return await store.count() == expected


@pytest.mark.postgres
async def test_a_removed_day_releases_its_ids_a_chunk_at_a_time(
    postgres_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ids of a removed day are forgotten before the day is dropped, in transactions of a
    few each; a record reusing one of them, later, is stored again."""
    monkeypatch.setattr(postgres_days, "RELEASE_AT_ONCE", 7)
    old = datetime(2001, 3, 4, 12, tzinfo=UTC)
    kept = datetime(2001, 3, 6, 12, tzinfo=UTC)
    store = detection_store(postgres_database)
    await store.open()
    try:
        removed = [make_detection(timestamp=old + timedelta(seconds=i)) for i in range(20)]
        await store.save([*removed, make_detection(timestamp=kept)])
        assert await store.drop_days_before(kept.date()) == [old.date()]
        connection = await asyncpg.connect(postgres_database)
        try:
            left = await connection.fetchval(
                "SELECT count(*) FROM detection_ids WHERE id = ANY($1::uuid[])",
                [d.id for d in removed],
            )
        finally:
            await connection.close()
        assert left == 0
        reused = make_detection(id=removed[0].id, timestamp=kept + timedelta(minutes=1))
        await store.save([reused])
        assert await store.count() == 2
        assert await store.count_by_make() == await store.group_by_make()
    finally:
        await store.close()


async def test_by_default_only_times_from_a_week_back_to_a_day_ahead_are_stored(
    servers: Servers, store_url: str
) -> None:
    now = datetime.now(UTC)
    # The default window, whatever the retention (none here).
    settings = (await stream_settings(servers, store_url=store_url)).model_copy(
        update={"detections_accept_days": 7.0}
    )
    store = detection_store(store_url)
    await store.open()
    try:
        async with indexer_running(settings) as indexer:
            stream = [
                message(now - timedelta(days=400), "Old"),
                message(now - timedelta(days=7, minutes=5), "Old"),
                message(now - timedelta(days=6, hours=23), "Week"),
                message(now, "Now"),
                message(now + timedelta(days=1, minutes=5), "Ahead"),
            ]
            await send_values(servers.kafka, settings.detections_topic, stream)
            dead = await read_topic(servers.kafka, settings.dead_letter_topic, expected=3)
            await eventually(lambda: _count_is(store, 2), within=60, what="the two in the window")
            assert not indexer.done()
        reasons = [header(r, "roadwatch.reason") for r in dead]
        assert sorted(reasons) == [b"too_new", b"too_old", b"too_old"]
        detail = header(dead[reasons.index(b"too_old")], "roadwatch.detail")
        assert b"before the window of times the store accepts" in detail
        assert await store.group_by_make() == {"Week": 1, "Now": 1}
    finally:
        await store.close()
