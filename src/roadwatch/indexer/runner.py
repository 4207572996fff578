import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol

from roadwatch.indexer.batch import MAX_BATCH, Batch, read_batch
from roadwatch.indexer.commits import CoalescingCommitter, Offsets
from roadwatch.indexer.dead_letter import Rejection
from roadwatch.indexer.error_policy import ErrorPolicy
from roadwatch.indexer.metrics import IndexerMetrics
from roadwatch.indexer.pipeline import OrderedPipeline, Stage, Wide
from roadwatch.indexer.processors import Processor
from roadwatch.indexer.progress import Progress
from roadwatch.kafka.reader import Fetching, Reader
from roadwatch.kafka.types import (
    CommitFailedError,
    ConsumerRebalanceListener,
    IllegalStateError,
    TopicPartition,
)
from roadwatch.kafka.unreadable import Unreadable
from roadwatch.parsing import parse_records
from roadwatch.rejections import RejectedMessage
from roadwatch.runtime.readiness import NotReady
from roadwatch.runtime.retry import GaveUpOnShutdown

log = logging.getLogger(__name__)

# How many finished batches may wait for a commit under way, to be committed together next.
COMMITS_COALESCED = 16


class Commits(Protocol):
    """How a finished batch's offsets are committed, told of the partitions as they move."""

    async def commit(self, offsets: Offsets) -> None: ...

    async def assigned(self, partitions: set[TopicPartition]) -> None: ...

    async def revoked(self, partitions: set[TopicPartition]) -> None: ...


class Consumer(Fetching, Protocol):
    """What the indexer asks of its Kafka consumer (aiokafka's, or a fake in unit tests)."""

    def subscribe(self, topics: list[str], *, listener: ConsumerRebalanceListener) -> None: ...
    async def commit(self, offsets: Offsets) -> None: ...
    def assignment(self) -> Iterable[TopicPartition]: ...
    def highwater(self, partition: TopicPartition) -> int | None: ...
    async def topics(self) -> Any: ...


class _FinishBatchesBeforeRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands partitions over only once the batches read from them are stored and committed."""

    def __init__(self, indexer: "Indexer") -> None:
        self._indexer = indexer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._indexer.finish_batches()
        self._indexer.progress.forget(revoked)
        await self._indexer.commits.revoked(revoked)
        if revoked:
            log.info("giving up partitions %s", _describe(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._indexer.commits.assigned(assigned)
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
    commit replays the batch, which the idempotent store absorbs. Every failure goes
    through the error policy: a record at fault is dead-lettered and the rest go on.
    """

    def __init__(
        self,
        consumer: Consumer,
        *,
        topic: str,
        chain: Sequence[Processor],
        dead_letter: Callable[[Sequence[Rejection]], Awaitable[None]],
        metrics: IndexerMetrics,
        policy: ErrorPolicy,
        ping_store: Callable[[], Awaitable[None]],
        max_batch: int = MAX_BATCH,
        commits: Commits | None = None,
    ) -> None:
        self._consumer = consumer
        self._reader = Reader(consumer, on_unreadable=self._dead_letter_unreadable)
        self._topic = topic
        self._chain = chain
        self._dead_letter = dead_letter
        self._max_batch = max_batch
        self._metrics = metrics
        self._policy = policy
        self._ping_store = ping_store
        self.progress = Progress(consumer)
        metrics.follow(lags=self.progress.lags, oldest_open=self.progress.oldest_open_seconds)
        # By default the consumer commits; with transactions, the commit publishes the alerts.
        self.commits = commits or ConsumerCommits(consumer)
        self._committer = CoalescingCommitter(
            self.commits.commit, committed=self.progress.committed
        )
        self._pipeline: OrderedPipeline[Batch] | None = None
        self._generation = 0

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; the batches read by then are finished and committed.

        A batch goes through stages: admission, each processor of the chain, dead-lettering
        its rejects, then the commit of its offsets. The stages overlap across batches
        (OrderedPipeline), and each sees the batches in the order read.
        """
        self._consumer.subscribe([self._topic], listener=_FinishBatchesBeforeRevoke(self))
        stages: list[Stage[Batch] | Wide[Batch]] = [
            # Room for a batch read ahead, so the store never waits for the next to be parsed.
            Wide(self._admit, 2),
            *(self._processor_stage(processor) for processor in self._chain),
            self._dead_letter_stage,
            Wide(self._commit_stage, COMMITS_COALESCED),
        ]
        self._pipeline = OrderedPipeline(stages)
        working = asyncio.create_task(self._pipeline.run())
        try:
            while not stop.is_set() and not working.done():
                fetched = await self._reader.read(timeout_ms=200, max_records=self._max_batch)
                # getmany returns records of assigned partitions only: they belong to the
                # generation current now.
                if fetched:
                    batch = read_batch(fetched, generation=self._generation, decode=parse_records)
                    self.progress.read(batch)
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

    async def _admit(self, batch: Batch) -> None:
        batch.stale = batch.generation != self._generation

    def _processor_stage(self, processor: Processor) -> Wide[Batch]:
        what = f"{type(processor).__name__} on a batch"

        async def step(batch: Batch) -> None:
            if batch.passing and not batch.stale:
                batch.passing, refused = await self._policy.apply(
                    processor, batch.passing, what=what
                )
                batch.reject(refused)

        return Wide(step, processor.batches_at_once)

    async def _dead_letter_unreadable(self, unreadable: Sequence[Unreadable]) -> None:
        # Before the batch read with them is queued, so before any commit that passes them.
        rejections = [(u, RejectedMessage(u.reason, u.detail)) for u in unreadable]
        await self._policy.retry(lambda: self._dead_letter(rejections), what="dead-lettering")

    async def _dead_letter_stage(self, batch: Batch) -> None:
        if batch.rejections and not batch.stale:
            await self._policy.retry(
                lambda: self._dead_letter(batch.rejections), what="dead-lettering"
            )

    async def _commit_stage(self, batch: Batch) -> None:
        if not batch.stale:
            await self._policy.retry(lambda: self._committer(batch.offsets), what="committing")
            self._record(batch)
        self.progress.finished(batch)

    async def ping_broker(self) -> None:
        await self._consumer.topics()

    async def ping_store(self) -> None:
        await self._ping_store()

    async def check_progress(self) -> None:
        """Raise NotReady while a batch has been failing, or waiting on a step that does not
        answer (a server gone silent mid-request: no error to retry), for too long."""
        problem = self._policy.problem()
        if problem is not None:
            raise NotReady(problem)
        open_for = self.progress.oldest_open_seconds()
        if open_for > self._policy.stuck_after:
            raise NotReady(f"a batch read {open_for:.0f} s ago is not finished: a step is silent")

    def _record(self, batch: Batch) -> None:
        count = sum(len(records) for records in batch.records.values())
        self._metrics.consumed.inc(count)
        self._metrics.batch_size.observe(count)
        self._metrics.batch_seconds.observe(time.perf_counter() - batch.arrived)


class ConsumerCommits:
    """Offsets committed by the consumer, outside any transaction (at least once)."""

    def __init__(self, consumer: Consumer) -> None:
        self._consumer = consumer

    async def commit(self, offsets: Offsets) -> None:
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as error:
            # The partitions moved to another indexer, which re-reads the batch from the last
            # commit: the store absorbs the repeat, so the batch is done from here.
            log.warning("batch stored, but its partitions were reassigned: %s", error)

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        pass

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        pass


async def _unless_done(step: Awaitable[None], working: asyncio.Task[None]) -> None:
    """Await `step`, unless the pipeline stops first (then nothing would ever take the batch)."""
    waiting = asyncio.ensure_future(step)
    await asyncio.wait({waiting, working}, return_when=asyncio.FIRST_COMPLETED)
    if not waiting.done():
        waiting.cancel()
