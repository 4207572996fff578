"""Kafka records built in memory, for unit tests of what the indexer does with them."""

import time

from roadwatch.kafka.record import Record


def consumer_record(
    value: bytes | None,
    *,
    topic: str = "test.detections",
    partition: int = 0,
    offset: int = 0,
    key: bytes | None = None,
    headers: list[tuple[str, bytes]] | None = None,
    timestamp_ms: int | None = None,
) -> Record:
    return Record(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=time.time_ns() // 1_000_000 if timestamp_ms is None else timestamp_ms,
        key=key,
        value=value,
        headers=tuple(headers or ()),
    )
