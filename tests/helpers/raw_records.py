"""Records as any client could write them, byte for byte: header names that are not UTF-8,
keys and values of any bytes, any timestamp, any codec. aiokafka's producer refuses to write
some of these, so the batch is encoded here (Kafka's record batch, magic 2) and sent in a
produce request of its own."""

import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaClient, TopicPartition, codec
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.record.util import calc_crc32c, encode_varint

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@dataclass(frozen=True)
class RawRecord:
    value: bytes | None
    key: bytes | None = None
    # Names are bytes here: a broker takes any, although Kafka's protocol calls them UTF-8.
    headers: Sequence[tuple[bytes, bytes | None]] = field(default_factory=list)
    timestamp_ms: int | None = None


def _varint(value: int) -> bytes:
    out = bytearray()
    encode_varint(value, out.append)
    return bytes(out)


def _sized(data: bytes | None) -> bytes:
    return _varint(-1) if data is None else _varint(len(data)) + data


def _record(record: RawRecord, offset_delta: int, timestamp_delta: int) -> bytes:
    body = (
        b"\x00"
        + _varint(timestamp_delta)
        + _varint(offset_delta)
        + _sized(record.key)
        + _sized(record.value)
        + _varint(len(record.headers))
        + b"".join(_varint(len(name)) + name + _sized(value) for name, value in record.headers)
    )
    return _varint(len(body)) + body


_COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "none": bytes,
    "gzip": codec.gzip_encode,
    "snappy": codec.snappy_encode,
    "lz4": codec.lz4_encode,
    "zstd": codec.zstd_encode,
}


def encode_batch(records: Sequence[RawRecord], *, compression: str = "none") -> bytes:
    """One record batch (magic 2) holding `records`, as a producer sends it."""
    now = time.time_ns() // 1_000_000
    stamps = [now if r.timestamp_ms is None else r.timestamp_ms for r in records]
    first = min(stamps)
    payload = b"".join(
        _record(record, delta, stamp - first)
        for delta, (record, stamp) in enumerate(zip(records, stamps, strict=True))
    )
    after_crc = struct.pack(
        ">hiqqqhii",
        CODECS[compression],
        len(records) - 1,
        first,
        max(stamps),
        -1,  # no producer id
        -1,
        -1,
        len(records),
    ) + _COMPRESS[compression](payload)
    crc: int = calc_crc32c(after_crc)
    after_length = struct.pack(">ibI", -1, 2, crc) + after_crc
    return struct.pack(">qi", 0, len(after_length)) + after_length


class RefusedByBroker(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"the broker refused the batch with error code {code}")
        self.code = code


async def produce_raw(
    bootstrap: str,
    topic: str,
    records: Sequence[RawRecord],
    *,
    partition: int = 0,
    compression: str = "none",
) -> None:
    """Write `records` as one batch to `topic`'s `partition`; RefusedByBroker if the broker
    will not take it."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        await client._wait_on_metadata(topic)
        leader = client.cluster.leader_for_partition(TopicPartition(topic, partition))
        request = ProduceRequest(
            transactional_id=None,
            required_acks=-1,
            timeout=10_000,
            topics=[(topic, [(partition, encode_batch(records, compression=compression))])],
        )
        response = await client.send(leader, request)
        for _topic, partitions in response.topics:
            for answer in partitions:
                if answer[1] != 0:
                    raise RefusedByBroker(answer[1])
    finally:
        await client.close()
