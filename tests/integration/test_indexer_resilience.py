"""Crashes, outages and rebalances lose no detection and store none twice."""

import asyncio
import random
import signal
from functools import partial
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from roadwatch.bootstrap.stores import detection_store
from roadwatch.catalog.producer import DetectionProducer
from roadwatch.catalog.vehicles import load_catalog
from roadwatch.indexer.runner import Indexer
from roadwatch.runtime.readiness import NotReady
from roadwatch.settings import Settings
from roadwatch.stores.detection_store import DetectionStore
from roadwatch.watchlists.matching import RuleIndex
from roadwatch.watchlists.rules import seed_rule
from tests.helpers.kafka import read_topic, stream_settings
from tests.helpers.processes import indexer_running, start_indexer_process
from tests.helpers.servers import Servers, own_postgres, unique
from tests.helpers.stored import counted, derived_from_record, stored_at_least
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def produce(
    settings: Settings, *, count: int | None, rate: float, stop: asyncio.Event | None = None
) -> int:
    """Detections sent at `rate` until `count` or `stop`; how many, every one acknowledged."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_broker_url, acks="all", linger_ms=10
    )
    await producer.start()
    try:
        stats = await DetectionProducer(
            producer,
            topic=settings.detections_topic,
            vehicles=load_catalog(),
            rng=random.Random(count),
        ).run(rate=rate, count=count, stop=stop or asyncio.Event())
    finally:
        await producer.stop()
    assert stats.acknowledged == stats.sent, stats.errors
    return stats.acknowledged


async def send_garbage(settings: Settings, *, rate: float, stop: asyncio.Event) -> list[bytes]:
    """Records that are no detection, each unlike any other, sent at `rate` until `stop`."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_broker_url, acks="all")
    await producer.start()
    sent: list[bytes] = []
    try:
        while not stop.is_set():
            value = f"not a detection {len(sent)}".encode()
            await producer.send_and_wait(settings.detections_topic, value)
            sent.append(value)
            await asyncio.sleep(1 / rate)
    finally:
        await producer.stop()
    return sent


async def assert_exactly_once(store: DetectionStore, *, produced: int) -> None:
    stored = await store.list(limit=produced + 100)
    assert len(stored) == produced, f"{len(stored)} stored of {produced} produced"
    assert len({(d.source.partition, d.source.offset) for d in stored}) == produced
    assert all(derived_from_record(d) for d in stored)
    assert await store.count_by_make() == await store.group_by_make()


@pytest.mark.timeout(900)
async def test_an_indexer_killed_again_and_again_loses_and_doubles_nothing(
    servers: Servers, store_url: str, store: DetectionStore, tmp_path: Path
) -> None:
    settings = await stream_settings(servers, store_url=store_url)
    group = unique("group")
    # The stream lasts until after the last kill, however long the restarts take. Each
    # restart waits out the killed member's Kafka session (10 s), so every indexer starts
    # thousands of records behind and is killed while it catches up; a faster stream would
    # only give FerretDB more to store, for no other kill point.
    ended = asyncio.Event()
    stream = asyncio.create_task(produce(settings, count=None, rate=300, stop=ended))
    garbage = asyncio.create_task(send_garbage(settings, rate=20, stop=ended))
    kills = 0
    while kills < 4:
        process = start_indexer_process(settings, group=group, log=tmp_path / "indexer.log")
        busy = await counted(store) + 1_000
        # Kill it only once it is busy storing, so that the kill lands mid-stream.
        await eventually(
            partial(_count_above, store, busy), within=60, what="the restarted indexer storing"
        )
        await asyncio.sleep(random.uniform(0.0, 0.5))
        process.kill()
        process.wait()
        kills += 1
    final = start_indexer_process(settings, group=group, log=tmp_path / "indexer.log")
    try:
        # The stream ends once the last indexer is storing too.
        busy = await counted(store) + 1_000
        await eventually(partial(_count_above, store, busy), within=120, what="the last storing")
        ended.set()
        produced, rejected = await stream, await garbage
        # A bound on completion, not on speed: on a loaded 2-core machine FerretDB took
        # more than 120 s to catch up after the fourth kill.
        await eventually(
            lambda: _count_above(store, produced - 1), within=300, what="everything stored"
        )
    finally:
        final.send_signal(signal.SIGTERM)
        assert final.wait(timeout=30) == 0
    await assert_exactly_once(store, produced=produced)
    # The alert history too: every alert of a stored detection, once.
    rules = RuleIndex([seed_rule(settings.suspicious_vehicle)])
    alerting = {d.id for d in await store.list(limit=produced) if rules.matches(d)}
    history = await store.alerts(limit=produced)
    assert len(history) == len(alerting) > 0
    assert {alert.detection.id for alert in history} == alerting
    # What a reader of committed records sees: each alert once, each dead letter once.
    alerts = await read_topic(
        servers.kafka, settings.alerts_topic, expected=len(alerting), within=30
    )
    assert sorted(orjson.loads(r.value)["id"] for r in alerts if r.value) == sorted(
        str(i) for i in alerting
    )
    letters = await read_topic(
        servers.kafka, settings.dead_letter_topic, expected=len(rejected), within=30
    )
    assert sorted(r.value for r in letters if r.value) == sorted(rejected)


@pytest.mark.postgres
async def test_two_indexers_in_one_group_share_the_stream_exactly(
    servers: Servers, postgres_database: str, tmp_path: Path
) -> None:
    settings = await stream_settings(servers, store_url=postgres_database)
    produced = 30_000
    group = unique("group")
    second_log = tmp_path / "second.log"
    store = detection_store(postgres_database)
    await store.open()
    try:
        stream = asyncio.create_task(produce(settings, count=produced, rate=3_000))
        first = start_indexer_process(settings, group=group, log=tmp_path / "first.log")
        await eventually(lambda: _count_above(store, 2_000), within=60, what="first indexing")
        second = start_indexer_process(settings, group=group, log=second_log)  # a rebalance

        async def second_joined() -> bool:
            return "consuming partitions" in second_log.read_text()

        # Not before it has joined: on a loaded machine its start can outlast the stream.
        await eventually(second_joined, within=60, what="the second indexer given partitions")
        first.send_signal(signal.SIGTERM)  # another, and a clean shutdown mid-stream
        assert await asyncio.to_thread(first.wait, 30) == 0
        await stream
        await eventually(
            lambda: _count_above(store, produced - 1), within=120, what="everything stored"
        )
        second.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(second.wait, 30) == 0
        await assert_exactly_once(store, produced=produced)
    finally:
        await store.close()
        for process in (first, second):
            if process.poll() is None:
                process.kill()


@pytest.mark.postgres
async def test_a_database_outage_of_ten_seconds_loses_nothing(
    servers: Servers, tmp_path: Path
) -> None:
    async with own_postgres(tmp_path / "state") as database:
        settings = await stream_settings(servers, store_url=database.url("roadwatch"))
        produced = 6_000
        store = detection_store(settings.detections_db_url)
        await store.open()
        async with indexer_running(settings, stuck_after=3) as running:
            stream = asyncio.create_task(produce(settings, count=produced, rate=400))
            await eventually(lambda: _count_above(store, 500), within=30, what="indexing")
            await store.close()
            await asyncio.to_thread(database.down)
            await eventually(
                partial(_not_ready, running.indexer), within=15, what="not ready, saying why"
            )
            await asyncio.sleep(5)
            assert not running.done(), "the indexer gave up during the outage"
            await database.up()
            await stream
            await store.open()
            await eventually(
                lambda: _count_above(store, produced - 1), within=90, what="everything stored"
            )
            # The last steps of a batch held through the outage (its alerts kept, its commit)
            # may still wait out their retry's back-off, up to 10 s, once it is stored.
            await eventually(
                partial(_ready, running.indexer), within=30, what="ready again, every batch done"
            )
        await assert_exactly_once(store, produced=produced)
        await store.close()


async def _not_ready(indexer: Indexer) -> bool:
    try:
        await indexer.check_progress()
    except NotReady as not_ready:
        return "has failed for" in str(not_ready)
    return False


async def _ready(indexer: Indexer) -> bool:
    try:
        await indexer.check_progress()
    except NotReady:
        return False
    return True


async def _count_above(store: DetectionStore, count: int) -> bool:
    return await stored_at_least(store, count + 1)
