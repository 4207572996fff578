"""Alerts: what is published for a detection that matched watchlist rules, the seam that
publishes it, and what every reader of the alerts topic takes for one."""

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID

import msgspec
import orjson

from roadwatch.domain import Alert, RuleRef
from roadwatch.errors import RoadwatchError
from roadwatch.kafka.sizes import SizeLimit
from roadwatch.kafka.types import AIOKafkaProducer, BatchBuilder, MessageSizeTooLargeError

# The largest alert a reader takes: roadwatch's own are under 32 KiB (see domain.Alert).
MAX_ALERT_BYTES = 64 * 1024
# The largest record batch alerts are sent in, and so the least a producer of them must take
# (its max_batch_size). aiokafka's default, 16 KiB, cut the few hundred alerts that a
# transaction holds for a partition into a dozen batches, which aiokafka sends one after
# another. At 256 KiB the indexer stored 1.10 times as many detections a second, with 16%
# less CPU of its own and 43% less of the broker's (bench/indexer_throughput.py's CPU
# figures, 4 interleaved runs each). Kafka takes batches of up to 1 MiB, unless a topic's
# max.message.bytes says less.
ALERT_BATCH_BYTES = 256 * 1024
# The batch size before it (aiokafka's default): below it, no smaller batch is tried.
SMALLEST_ALERT_BATCH = 16 * 1024
# What a record adds to its key and value in a batch, at most (lengths, offsets, time).
RECORD_OVERHEAD = 32


def encode_alert(alert: Alert) -> bytes:
    detection = alert.detection
    return _encode(
        _AlertMessage(
            id=detection.id,
            timestamp=milliseconds_iso(detection.timestamp),
            year=detection.year,
            make=detection.make,
            model=detection.model,
            category=detection.category,
            rules=alert.rules,
            rules_matched=alert.rules_matched,
        )
    )


def milliseconds_iso(moment: datetime) -> str:
    """`moment.isoformat(timespec="milliseconds")`; for a time in UTC, as every detection's
    is, in half its time: msgspec writes the date and the time in C, where isoformat spends
    0.9 µs asking the time zone its offset and parsing its keyword."""
    if moment.tzinfo is not UTC:
        return moment.isoformat(timespec="milliseconds")
    # msgspec's is "YYYY-MM-DDTHH:MM:SS[.ffffff]Z", quoted.
    return f"{_encode(moment)[1:20].decode()}.{moment.microsecond // 1000:03d}+00:00"


def alert_key(alert: Alert) -> bytes:
    """The key an alert is published under: its detection's id, as str() writes it."""
    return _encode(alert.detection.id)[1:-1]


class NotAnAlert(RoadwatchError):
    """A record of the alerts topic that holds no alert; the message says why."""


class _AlertMessage(msgspec.Struct, gc=False):
    """An alert as it travels, in this order: what every reader of the topic takes."""

    id: UUID
    timestamp: str
    year: int
    make: str
    model: str
    category: str
    rules: tuple[RuleRef, ...]
    rules_matched: int = 0


# msgspec writes UUIDs, and so the alert, in a fraction of the time orjson takes.
_encode = msgspec.json.Encoder().encode

_decode_alert = msgspec.json.Decoder(_AlertMessage).decode


@dataclass(frozen=True, slots=True)
class ReadAlert:
    id: UUID
    rule_ids: frozenset[UUID]
    # The alert as JSON text on one line, as it travels on to clients and receivers.
    text: str


def read_alert(value: bytes | None) -> ReadAlert:
    """The alert a record of the alerts topic holds: the API's feed and the deliverer take
    the same records for alerts, and pass on nothing else."""
    if value is None:
        raise NotAnAlert("no value")
    if len(value) > MAX_ALERT_BYTES:
        raise NotAnAlert(f"{len(value):,} bytes, over {MAX_ALERT_BYTES:,}")
    try:
        message = _decode_alert(value)
        text = value.decode()
    except (msgspec.MsgspecError, UnicodeDecodeError) as error:
        raise NotAnAlert(str(error)[:300]) from None
    if "\n" in text or "\r" in text:
        # Whitespace JSON allows, which would break an event stream's lines.
        text = orjson.dumps(orjson.loads(value)).decode()
    return ReadAlert(message.id, frozenset(rule.id for rule in message.rules), text)


class AlertPublisher(Protocol):
    async def publish(self, alerts: Sequence[Alert]) -> None:
        """Return once the broker has acknowledged every alert; raise if any was refused."""


class AlertBatchSize(SizeLimit):
    """How many bytes a batch of alerts may hold: ALERT_BATCH_BYTES, until the topic refuses
    a batch as too large; then a quarter of that, down to SMALLEST_ALERT_BATCH."""

    def __init__(self, limit: int = ALERT_BATCH_BYTES) -> None:
        super().__init__(
            "a batch of alerts", "batches", largest=limit, smallest=SMALLEST_ALERT_BATCH
        )


class KafkaAlertPublisher:
    """Alerts to a Kafka topic, keyed by detection id, so a re-sent alert is recognisable.

    An alert goes to the partition numbered like its detection's, modulo the alert topic's
    partitions: alerts from one partition of detections stay in their order, and a re-sent
    alert lands where the first one did. They are sent as whole record batches of up to
    `batch_size.limit` bytes, which costs the producer a fraction of sending them one by one;
    its max_batch_size must be at least ALERT_BATCH_BYTES.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        *,
        topic: str,
        batch_size: AlertBatchSize | None = None,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._batch_size = batch_size or AlertBatchSize()

    async def publish(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        partitions = sorted(await self._producer.partitions_for(self._topic))
        by_partition: dict[int, list[Alert]] = defaultdict(list)
        for alert in alerts:
            by_partition[partitions[alert.source.partition % len(partitions)]].append(alert)
        deliveries = []
        limit = self._batch_size.limit
        for partition, in_partition in by_partition.items():
            batch, room = self._producer.create_batch(), limit
            for alert in in_partition:
                value, key = encode_alert(alert), alert_key(alert)
                size = len(key) + len(value) + RECORD_OVERHEAD
                full = size > room and batch.record_count() > 0
                if full or batch.append(key=key, value=value, timestamp=None) is None:
                    deliveries.append(await self._send(batch, partition))
                    batch, room = self._producer.create_batch(), limit
                    batch.append(key=key, value=value, timestamp=None)
                room -= size
            deliveries.append(await self._send(batch, partition))
        # Every outcome taken, so that no failure is left unretrieved; the first is raised.
        outcomes = await asyncio.gather(*deliveries, return_exceptions=True)
        if any(isinstance(o, MessageSizeTooLargeError) for o in outcomes):
            # Raised all the same: the step is tried again, in smaller batches.
            self._batch_size.refused(self._topic)
        failed = next((o for o in outcomes if isinstance(o, BaseException)), None)
        if failed is not None:
            raise failed

    async def _send(self, batch: BatchBuilder, partition: int) -> "asyncio.Future[object]":
        future: asyncio.Future[object] = await self._producer.send_batch(
            batch, self._topic, partition=partition
        )
        return future
