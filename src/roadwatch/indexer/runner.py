import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, IllegalStateError
from aiokafka.structs import ConsumerRecord, OffsetAndMetadata

from roadwatch.domain import Detection, Source
from roadwatch.indexer.backoff import GaveUpOnShutdown, retry_until_done
from roadwatch.indexer.dead_letter import Rejection
from roadwatch.indexer.metrics import IndexerMetrics
from roadwatch.indexer.processors import Processor, run_chain
from roadwatch.parsing import RejectedMessage, parse_detection
from roadwatch.stores.base import DetectionStore

log = logging.getLogger(__name__)

Records = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


@dataclass(frozen=True)
class BatchOutcome:
    detections: int
    rejected: int


class _FinishBatchBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands partitions over only once the batch in flight is stored and committed."""

    def __init__(self, in_flight: asyncio.Lock) -> None:
        self._in_flight = in_flight

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._in_flight:
            if revoked:
                log.info("giving up partitions %s", _describe(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("consuming partitions %s", _describe(assigned))


def _describe(partitions: set[TopicPartition]) -> str:
    topics = sorted({tp.topic for tp in partitions})
    return (
        ", ".join(
            f"{topic}{sorted(tp.partition for tp in partitions if tp.topic == topic)}"
            for topic in topics
        )
        or "none"
    )


class Indexer:
    """Consumes detections in batches and commits each batch once all its steps are done.

    At-least-once: offsets are committed only after the chain (store, alerts) and the
    dead-letter topic have finished with every record of the batch. A crash before the
    commit replays the batch, which the idempotent store absorbs.
    """

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        *,
        topic: str,
        chain: Sequence[Processor],
        dead_letter: Callable[[Sequence[Rejection]], Awaitable[None]],
        metrics: IndexerMetrics,
        store: DetectionStore,
        max_batch: int = 5000,
        on_batch: Callable[[BatchOutcome], None] = lambda _outcome: None,
    ) -> None:
        self._consumer = consumer
        self._topic = topic
        self._chain = chain
        self._dead_letter = dead_letter
        self._max_batch = max_batch
        self._on_batch = on_batch
        self._metrics = metrics
        self._store = store
        self._in_flight = asyncio.Lock()
        self._next_offsets: dict[TopicPartition, int] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; the batch in flight then is finished and committed."""
        self._consumer.subscribe([self._topic], listener=_FinishBatchBeforeRevoke(self._in_flight))
        while not stop.is_set():
            records: Records = await self._consumer.getmany(
                timeout_ms=200, max_records=self._max_batch
            )
            if not records:
                continue
            started = time.perf_counter()
            async with self._in_flight:
                try:
                    outcome = await self._handle(records, stop)
                except GaveUpOnShutdown as error:
                    log.warning("stopping with a batch undone, to be replayed: %s", error)
                    return
            self._record(outcome, started)

    async def ping_broker(self) -> None:
        await self._consumer.topics()

    async def ping_store(self) -> None:
        await self._store.ping()

    def _record(self, outcome: BatchOutcome, started: float) -> None:
        count = outcome.detections + outcome.rejected
        self._metrics.consumed.inc(count)
        self._metrics.batch_size.observe(count)
        self._metrics.batch_seconds.observe(time.perf_counter() - started)
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            done = self._next_offsets.get(tp)
            if highwater is not None and done is not None:
                self._metrics.lag.labels(tp.topic, str(tp.partition)).set(max(highwater - done, 0))
        self._on_batch(outcome)

    async def _handle(self, records: Records, stop: asyncio.Event) -> BatchOutcome:
        detections: list[Detection] = []
        rejections: list[Rejection] = []
        for partition_records in records.values():
            for record in partition_records:
                try:
                    detections.append(
                        parse_detection(
                            record.value,
                            source=Source(record.topic, record.partition, record.offset),
                            timestamp_ms=record.timestamp,
                        )
                    )
                except RejectedMessage as rejection:
                    rejections.append((record, rejection))
        if rejections:
            await retry_until_done(
                lambda: self._dead_letter(rejections), what="dead-lettering", stop=stop
            )
        if detections:
            await retry_until_done(
                lambda: run_chain(self._chain, detections), what="processing a batch", stop=stop
            )
        offsets = {
            partition: OffsetAndMetadata(batch[-1].offset + 1, "")
            for partition, batch in records.items()
        }
        await retry_until_done(lambda: self._commit(offsets), what="committing", stop=stop)
        self._next_offsets.update({tp: offset.offset for tp, offset in offsets.items()})
        return BatchOutcome(detections=len(detections), rejected=len(rejections))

    async def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as error:
            # The partitions moved to another indexer, which re-reads the batch from the last
            # commit: the store absorbs the repeat, so the batch is done from here.
            log.warning("batch stored, but its partitions were reassigned: %s", error)
