"""Kafka records built in memory, for unit tests of what the indexer does with them."""

import time

from aiokafka.structs import ConsumerRecord


def consumer_record(
    value: bytes | None,
    *,
    topic: str = "test.detections",
    partition: int = 0,
    offset: int = 0,
    key: bytes | None = None,
    headers: list[tuple[str, bytes]] | None = None,
    timestamp_ms: int | None = None,
) -> "ConsumerRecord[bytes, bytes]":
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=time.time_ns() // 1_000_000 if timestamp_ms is None else timestamp_ms,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value or b""),
        headers=headers or [],
    )
