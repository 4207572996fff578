"""Every committed record of a topic, read from its beginning to its end as it is now."""

from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient


@dataclass(frozen=True, slots=True)
class Record:
    partition: int
    offset: int
    value: bytes
    timestamp_ms: int
    headers: dict[str, bytes]


async def read_committed(bootstrap: str, topic: str) -> list[Record]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        request_timeout_ms=30_000,
    )
    await consumer.start()
    try:
        assigned = await _partitions(bootstrap, topic)
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        # For a reader of committed records, the end is the last stable offset.
        ends = await consumer.end_offsets(assigned)
        records: list[Record] = []
        behind = [tp for tp in assigned if await consumer.position(tp) < ends[tp]]
        while behind:
            fetched = await consumer.getmany(*behind, timeout_ms=1000)
            for tp, batch in fetched.items():
                records += [
                    Record(
                        tp.partition,
                        record.offset,
                        record.value or b"",
                        record.timestamp,
                        {name: value or b"" for name, value in record.headers},
                    )
                    for record in batch
                    if record.offset < ends[tp]
                ]
            behind = [tp for tp in behind if await consumer.position(tp) < ends[tp]]
    finally:
        await consumer.stop()
    return records


async def record_count(bootstrap: str, topic: str) -> int:
    """How many records the topic holds (of a topic no transaction writes to)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await consumer.start()
    try:
        assigned = await _partitions(bootstrap, topic)
        ends = await consumer.end_offsets(assigned)
        firsts = await consumer.beginning_offsets(assigned)
    finally:
        await consumer.stop()
    return int(sum(ends.values()) - sum(firsts.values()))


async def _partitions(bootstrap: str, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(TopicPartition(topic, p["partition"]) for p in described["partitions"])
