"""Driving roadwatch through real Kafka topics: fresh topics, producing, reading back."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from roadwatch.kafka.reader import consumer
from roadwatch.kafka.record import Record
from roadwatch.kafka.topics import COMPACTED
from roadwatch.runtime.lifecycle import started
from roadwatch.settings import Settings
from tests.helpers.servers import Servers, create_topic


async def stream_settings(servers: Servers, *, store_url: str, suspicious: str = "SUV") -> Settings:
    """Settings whose topics no other test uses, storing into `store_url`."""
    return servers.settings.model_copy(
        update={
            "detections_topic": await create_topic(servers.kafka, partitions=6),
            "alerts_topic": await create_topic(servers.kafka, partitions=3),
            "dead_letter_topic": await create_topic(servers.kafka, partitions=1),
            "watchlists_topic": await create_topic(servers.kafka, partitions=1, config=COMPACTED),
            "detections_db_url": store_url,
            "suspicious_vehicle": suspicious,
            # Tests send detections from any day since 2000; the window is tested apart.
            "detections_accept_days": None,
        }
    )


async def send_values(
    bootstrap: str, topic: str, values: Iterable[bytes | None], *, key: bytes | None = None
) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        deliveries = [await producer.send(topic, value, key=key) for value in values]
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
    return len(deliveries)


async def send_to_every_partition(
    bootstrap: str, topic: str, values: Iterable[bytes], *, partitions: int
) -> None:
    """Each value once on every partition of `topic`."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        deliveries = [
            await producer.send(topic, value, partition=partition)
            for value in values
            for partition in range(partitions)
        ]
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()


def header(record: Record, name: str) -> bytes:
    """The value of `record`'s header `name`, which the test expects it to carry."""
    value = dict(record.headers)[name]
    assert value is not None, f"{record}: header {name} has no value"
    return value


def value_of(record: Record) -> bytes:
    assert record.value is not None, f"{record} has no value"
    return record.value


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    expected: int,
    within: float = 60.0,
    settle: float = 1.0,
    committed: bool = True,
) -> list[Record]:
    """Everything on `topic` (only what transactions committed, unless `committed` is
    False), waiting up to `within` s for `expected` records, then `settle` s more so that
    records beyond the expected ones are seen too."""
    # roadwatch's own consumer, whose records are roadwatch's Records.
    reading = consumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        isolation_level="read_committed" if committed else "read_uncommitted",
    )
    await reading.start()
    records: list[Record] = []
    try:
        deadline = time.monotonic() + within
        while len(records) < expected and time.monotonic() < deadline:
            for batch in (await reading.getmany(timeout_ms=500)).values():
                records += batch
        settle_until = time.monotonic() + settle
        while time.monotonic() < settle_until:
            for batch in (await reading.getmany(timeout_ms=200)).values():
                records += batch
    finally:
        await reading.stop()
    return records


async def group_caught_up(bootstrap: str, topic: str, group: str, *, partitions: int) -> bool:
    """Whether `group` has committed every record of `topic`: for an indexer, every batch
    through all its steps (offsets are committed once the last step is done)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        every = [TopicPartition(topic, partition) for partition in range(partitions)]
        ends = await consumer.end_offsets(every)
        for partition in every:
            if (await consumer.committed(partition) or 0) < ends[partition]:
                return False
        return True
    finally:
        await consumer.stop()


async def no_member_of_the_group(_partition: TopicPartition) -> bool:
    """What a consumer group says of an indexer's transactions with no consumer in it:
    they hold no partition."""
    return False


def committed_of_group(
    bootstrap: str, group: str
) -> Callable[[TopicPartition], Awaitable[int | None]]:
    """The group's committed offset of a partition, asked by a consumer of the group that
    joins nothing."""

    async def committed(partition: TopicPartition) -> int | None:
        asking = await started(AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group))
        try:
            offset: int | None = await asking.committed(partition)
            return offset
        finally:
            await asking.stop()

    return committed
