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
from roadwatch.indexer.pipeline import OrderedPipeline, Stage, Wide
from roadwatch.indexer.processors import Processor
from roadwatch.parsing import RejectedMessage, parse_detection
from roadwatch.stores.base import DetectionStore

log = logging.getLogger(__name__)

# How many finished batches may wait for a commit under way, to be committed together next.
COMMITS_COALESCED = 16

Records = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


@dataclass
class _Batch:
    detections: list[Detection]
    rejections: list[Rejection]
    offsets: dict[TopicPartition, OffsetAndMetadata]
    arrived: float
    generation: int
    # What the next processor sees: each one's output, as in a chain.
    passing: Sequence[Detection] = ()
    stale: bool = False


class _FinishBatchesBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands partitions over only once the batches read from them are stored and committed."""

    def __init__(self, indexer: "Indexer") -> None:
        self._indexer = indexer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._indexer.finish_batches()
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
    ) -> None:
        self._consumer = consumer
        self._topic = topic
        self._chain = chain
        self._dead_letter = dead_letter
        self._max_batch = max_batch
        self._metrics = metrics
        self._store = store
        self._next_offsets: dict[TopicPartition, int] = {}
        self._uncommitted: dict[TopicPartition, OffsetAndMetadata] = {}
        self._committing = asyncio.Lock()
        # Batches counted into the commit stage, and how many of them are committed.
        self._entered = 0
        self._committed_upto = 0
        self._pipeline: OrderedPipeline[_Batch] | None = None
        self._generation = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; the batches read by then are finished and committed.

        A batch goes through stages: dead-lettering its rejects, each processor of the chain,
        then the commit of its offsets. The stages overlap across batches (OrderedPipeline),
        and each sees the batches in the order read.
        """
        self._consumer.subscribe([self._topic], listener=_FinishBatchesBeforeRevoke(self))
        stages: list[Stage[_Batch] | Wide[_Batch]] = [
            # Room for a batch read ahead, so the store never waits for the next to be parsed.
            Wide(self._dead_letter_stage(stop), 2),
            *(self._processor_stage(processor, stop) for processor in self._chain),
            self._commit_stage(stop),
        ]
        self._pipeline = OrderedPipeline(stages)
        working = asyncio.create_task(self._pipeline.run())
        try:
            while not stop.is_set() and not working.done():
                records: Records = await self._consumer.getmany(
                    timeout_ms=200, max_records=self._max_batch
                )
                # getmany returns records of assigned partitions only: they belong to the
                # generation current now.
                if records:
                    batch = self._parse(records, self._generation)
                    await _unless_done(self._pipeline.put(batch), working)
        finally:
            if not working.done():
                await _unless_done(self._pipeline.close(), working)
            try:
                await working
            except* GaveUpOnShutdown as given_up:
                log.warning(
                    "stopping with batches undone, to be replayed: %s", given_up.exceptions[0]
                )

    async def finish_batches(self) -> None:
        """Wait until every batch read so far is finished; later reads start a new generation
        whose batches from before are left to be read again by the partitions' next owner."""
        if self._pipeline is not None:
            await self._pipeline.finished()
        self._generation += 1

    def _dead_letter_stage(self, stop: asyncio.Event) -> Stage[_Batch]:
        async def dead_letter(batch: _Batch) -> None:
            batch.stale = batch.generation != self._generation
            if batch.rejections and not batch.stale:
                await retry_until_done(
                    lambda: self._dead_letter(batch.rejections), what="dead-lettering", stop=stop
                )

        return dead_letter

    def _processor_stage(self, processor: Processor, stop: asyncio.Event) -> Wide[_Batch]:
        async def step(batch: _Batch) -> None:
            if batch.passing and not batch.stale:
                batch.passing = await retry_until_done(
                    lambda: processor(batch.passing), what="processing a batch", stop=stop
                )

        return Wide(step, processor.batches_at_once)

    def _commit_stage(self, stop: asyncio.Event) -> Wide[_Batch]:
        """Commit each batch's offsets once every step before is done with it.

        A commit is a round trip to the broker; batches that finish while one is under way
        are committed together by the next, so that committing never sets the pace.
        """

        async def commit(batch: _Batch) -> None:
            if batch.stale:
                return
            # Batches enter in order, so a partition's offset here only moves forward.
            self._uncommitted.update(batch.offsets)
            self._entered += 1
            mine = self._entered
            async with self._committing:
                if self._committed_upto < mine:
                    offsets, self._uncommitted = self._uncommitted, {}
                    upto = self._entered
                    await retry_until_done(
                        lambda: self._commit(offsets), what="committing", stop=stop
                    )
                    self._committed_upto = upto
                    self._next_offsets.update({tp: o.offset for tp, o in offsets.items()})
            self._record(batch)

        return Wide(commit, COMMITS_COALESCED)

    async def ping_broker(self) -> None:
        await self._consumer.topics()

    async def ping_store(self) -> None:
        await self._store.ping()

    def _record(self, batch: _Batch) -> None:
        count = len(batch.detections) + len(batch.rejections)
        self._metrics.consumed.inc(count)
        self._metrics.batch_size.observe(count)
        self._metrics.batch_seconds.observe(time.perf_counter() - batch.arrived)
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            done = self._next_offsets.get(tp)
            if highwater is not None and done is not None:
                self._metrics.lag.labels(tp.topic, str(tp.partition)).set(max(highwater - done, 0))

    def _parse(self, records: Records, generation: int) -> _Batch:
        arrived = time.perf_counter()
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
        offsets = {
            partition: OffsetAndMetadata(batch[-1].offset + 1, "")
            for partition, batch in records.items()
        }
        return _Batch(detections, rejections, offsets, arrived, generation, passing=detections)

    async def _commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as error:
            # The partitions moved to another indexer, which re-reads the batch from the last
            # commit: the store absorbs the repeat, so the batch is done from here.
            log.warning("batch stored, but its partitions were reassigned: %s", error)


async def _unless_done(step: Awaitable[None], working: asyncio.Task[None]) -> None:
    """Await `step`, unless the pipeline stops first (then nothing would ever take the batch)."""
    waiting = asyncio.ensure_future(step)
    await asyncio.wait({waiting, working}, return_when=asyncio.FIRST_COMPLETED)
    if not waiting.done():
        waiting.cancel()
