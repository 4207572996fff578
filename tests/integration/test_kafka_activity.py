"""What `roadwatch status` reads from the broker, against a real one: lag per group, records
published lately, and dead letters by reason, without joining any group."""

import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from roadwatch.kafka.activity import Activity
from roadwatch.status.gather import Endpoints, snapshot
from tests.helpers.ports import free_port
from tests.helpers.servers import Servers, create_topic, unique

pytestmark = pytest.mark.kafka

HOUR_MS = 3_600_000


async def _send(
    bootstrap: str, topic: str, count: int, *, reason: str | None = None, ago_ms: int = 0
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        at = int(time.time() * 1000) - ago_ms
        headers = [] if reason is None else [("roadwatch.reason", reason.encode())]
        for n in range(count):
            await producer.send_and_wait(
                topic, b"%d" % n, timestamp_ms=at, headers=headers, partition=n % 2
            )
    finally:
        await producer.stop()


async def test_lag_is_what_a_group_has_not_committed_and_none_before_it_commits(
    servers: Servers,
) -> None:
    topic, group = await create_topic(servers.kafka, partitions=2), unique("status")
    await _send(servers.kafka, topic, 6)
    async with Activity({"bootstrap_servers": servers.kafka}) as activity:
        assert await activity.lag("never-committed", [topic]) is None
        committer = AIOKafkaConsumer(
            bootstrap_servers=servers.kafka, group_id=group, enable_auto_commit=False
        )
        await committer.start()
        committer.assign([TopicPartition(topic, 0)])
        try:
            await committer.commit({TopicPartition(topic, 0): 2})
        finally:
            await committer.stop()
        # Partition 0 is 1 behind; partition 1, never committed, all 3.
        assert await activity.lag(group, [topic]) == 4
        assert await activity.end_total(topic) == 6


async def test_records_and_dead_letters_are_counted_over_the_last_interval_only(
    servers: Servers,
) -> None:
    topic = await create_topic(servers.kafka, partitions=2)
    await _send(servers.kafka, topic, 3, reason="malformed_json", ago_ms=2 * HOUR_MS)
    await _send(servers.kafka, topic, 4, reason="malformed_json")
    await _send(servers.kafka, topic, 2, reason="HTTP 503: Service Unavailable")
    await _send(servers.kafka, topic, 1)
    await _send(servers.kafka, topic, 1, reason="\x1b[2Jcleared")
    async with Activity({"bootstrap_servers": servers.kafka}) as activity:
        assert (await activity.records_since(topic, 60)).reasons["records"] == 8
        letters = await activity.letters_since(topic, 3600)
        assert dict(letters.reasons) == {
            "malformed_json": 4,
            "HTTP 503": 2,
            "unstated": 1,
            # A terminal's escape, shown as text.
            "\\x1b[2Jcleared": 1,
        }
        assert not letters.more
        empty = await create_topic(servers.kafka, partitions=1)
        assert dict((await activity.letters_since(empty, 3600)).reasons) == {}


async def test_records_are_counted_as_committed_not_as_offsets(servers: Servers) -> None:
    topic = await create_topic(servers.kafka, partitions=1)
    producer = AIOKafkaProducer(bootstrap_servers=servers.kafka, transactional_id=unique("tx"))
    await producer.start()
    try:
        for committed in (True, False, True):
            await producer.begin_transaction()
            await (await producer.send(topic, b"alert"))
            if committed:
                await producer.commit_transaction()
            else:
                await producer.abort_transaction()
    finally:
        await producer.stop()
    async with Activity({"bootstrap_servers": servers.kafka}) as activity:
        # Six offsets: three records and three markers; two records committed.
        assert await activity.end_total(topic) == 6
        counted = await activity.records_since(topic, 60)
        assert dict(counted.reasons) == {"records": 2}
        assert not counted.more


async def test_status_with_the_broker_away_says_so_and_is_not_ready(servers: Servers) -> None:
    away = f"127.0.0.1:{free_port()}"
    settings = servers.settings.model_copy(update={"kafka_broker_url": away})
    nowhere = Endpoints.local(api=free_port(), indexer=free_port(), deliver=free_port())
    found = await snapshot(settings, nowhere, {"bootstrap_servers": away}, window=0.5)
    assert not found.ready
    assert "broker" in found.unknown
    assert found.lag == {}
    assert found.published_per_second is None
    kafka = next(part for part in found.servers if part.name == "Kafka")
    assert not kafka.ready
    assert kafka.problem
    assert {part.name for part in found.not_ready} >= {"Kafka", "api", "indexer", "deliver"}
