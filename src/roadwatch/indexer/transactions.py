"""A batch's alerts, its dead letters and its offsets committed together: one Kafka
transaction for each partition of detections, so that a reader of committed records (the
API's feed, the deliverer) sees each alert and each dead letter exactly once, whatever
crashes between publishing and committing.

Fencing: aiokafka commits a transaction's offsets without the consumer group's generation
(TxnOffsetCommit v0, before KIP-447), so the group cannot refuse a zombie's commit. Each
partition of detections therefore gets a producer of its own, whose transactional id names
the partition: the indexer that takes a partition over starts a producer with the same id,
and the broker fences the one before, which can then commit nothing.

The group's committed offsets, from which the consumer starts, are fetched by aiokafka on
its own, before the partition's producer has fenced the previous holder, whose transaction
may still commit. So every producer, once started, reads the group's committed offset again:
the floor. Alerts below it were published by the transaction that committed it, and a
replayed batch below it commits nothing.

The broker also fences a producer whose transaction outlived its timeout (an outage, a long
pause). So a fenced indexer asks the group whether the partition is still its own before it
starts another producer, which would fence the partition's rightful holder in turn.
"""

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from roadwatch.alerts import AlertBatchSize, KafkaAlertPublisher
from roadwatch.errors import RoadwatchError
from roadwatch.indexer.pending import PendingAlerts, PendingLetters
from roadwatch.kafka.letters import send_letters
from roadwatch.kafka.types import (
    AIOKafkaProducer,
    OffsetAndMetadata,
    ProducerFenced,
    TopicPartition,
)
from roadwatch.runtime.gathering import all_ended
from roadwatch.runtime.lifecycle import started

log = logging.getLogger(__name__)

# aiokafka asks for the group's committed offsets until it gets them, the broker away or not:
# bounded, the commit fails with a reason that the policy logs and retries.
FLOOR_READ_SECONDS = 30


class TransactionsClosed(RoadwatchError):
    """A commit came after the indexer closed its transactions, as it stops."""


class FencedButHeld(RoadwatchError):
    """The broker fenced a partition's producer, and the group still gives the partition to
    this indexer: the retry starts another producer."""


Offsets = dict[TopicPartition, OffsetAndMetadata]


@dataclass
class PartitionTransactions:
    """A transactional producer for each partition of detections this indexer holds."""

    make_producer: Callable[[str], AIOKafkaProducer]
    alerts_topic: str
    group: str
    pending: PendingAlerts
    # Whether the group, as its coordinator sees it, still gives this indexer the partition.
    holds: Callable[[TopicPartition], Awaitable[bool]]
    # The group's committed offset of the partition, as its coordinator has it.
    committed: Callable[[TopicPartition], Awaitable[int | None]]
    # Shared by every partition's producer: a topic that refused one batch refuses all.
    batch_size: AlertBatchSize = field(default_factory=AlertBatchSize)
    # The batches' dead letters, sent in their transaction too; None: sent outside.
    letters: PendingLetters | None = None
    _producers: dict[TopicPartition, AIOKafkaProducer] = field(default_factory=dict, init=False)
    # The partitions held now, each with its producer once started.
    _held: set[TopicPartition] = field(default_factory=set, init=False)
    # Once closed, a partition assigned late (a rebalance as the indexer stops) gets none.
    _closed: bool = field(default=False, init=False)
    # One opening at a time a partition: a second producer of the same id would fence the
    # first, and the indexer would fence itself.
    _opening: dict[TopicPartition, asyncio.Lock] = field(
        default_factory=lambda: defaultdict(asyncio.Lock), init=False
    )
    # Partitions whose producer was fenced, not yet known to be this indexer's still.
    _fenced: set[TopicPartition] = field(default_factory=set, init=False)
    # The group's committed offset of each partition, read once its producer had started,
    # then moved by each commit (None: no offset committed yet).
    _floor: dict[TopicPartition, int | None] = field(default_factory=dict, init=False)
    # Producers let go of after a failed commit, stopping in the background.
    _stopping: set["asyncio.Task[None]"] = field(default_factory=set, init=False)

    def transactional_id(self, partition: TopicPartition) -> str:
        return f"{self.group}.{partition.topic}.{partition.partition}"

    async def assigned(self, partitions: Iterable[TopicPartition]) -> None:
        """Start a producer for each: it fences the one a previous holder used, and aborts
        the transaction that holder left open. One that fails to start (the broker away, an
        ACL missing) is started again by the first commit, whose retries report why."""
        if self._closed:
            return
        new = [tp for tp in partitions if tp not in self._held]
        self._held.update(new)
        started = await asyncio.gather(*(self._open(tp) for tp in new), return_exceptions=True)
        for partition, outcome in zip(new, started, strict=True):
            if isinstance(outcome, Exception):
                log.warning("no transactions yet for %s: %s", partition, outcome)

    async def revoked(self, partitions: Iterable[TopicPartition]) -> None:
        gone = [tp for tp in partitions if tp in self._held]
        self._held.difference_update(gone)
        self._fenced.difference_update(gone)
        await asyncio.gather(*(self._close(tp) for tp in gone))
        self._forget(gone)

    async def close(self) -> None:
        self._closed = True
        await self.revoked(list(self._held))
        await asyncio.gather(*self._stopping)

    async def commit(self, offsets: Offsets) -> None:
        """Publish the alerts below each offset and commit the offset, in one transaction a
        partition; raises for the policy to retry if the broker did not take it.

        Every partition's commit has ended when this returns or raises: the retry would
        otherwise open a second transaction on a producer whose first is still under way."""
        await all_ended(*(self._commit(tp, offset) for tp, offset in offsets.items()))

    async def _open(self, partition: TopicPartition) -> None:
        async with self._opening[partition]:
            if partition in self._producers:
                return
            producer = await started(self.make_producer(self.transactional_id(partition)))
            if self._closed or partition not in self._held:
                # Closed, or given up, while it started.
                await producer.stop()
                return
            self._producers[partition] = producer
            try:
                await self._read_floor(partition)
            except Exception as error:
                log.warning(
                    "the committed offset of %s is read by its first commit: %s", partition, error
                )

    async def _commit(self, partition: TopicPartition, offset: OffsetAndMetadata) -> None:
        if partition not in self._held:
            # Given up in a rebalance: its next holder replays and publishes from the last
            # commit.
            self._settled(partition, offset.offset)
            return
        if partition in self._fenced and not await self._still_held(partition):
            return
        if partition not in self._producers:
            await self._open(partition)
        producer = self._producers.get(partition)
        if producer is None:
            # Closed as the indexer stops: the batch is replayed by the next start.
            raise TransactionsClosed(f"no transactions for {partition} any more")
        if await self._below_floor(partition, offset):
            return
        alerts = self.pending.before(partition, offset.offset)
        letters = self.letters.before(partition, offset.offset) if self.letters else []
        publisher = KafkaAlertPublisher(
            producer, topic=self.alerts_topic, batch_size=self.batch_size
        )
        # Never aborted here: aiokafka's abort waits on the broker with no bound, for ever if
        # its sender has died, and a commit cancelled as the indexer stops would wait with it.
        # The next producer of the same id aborts whatever this one left open.
        try:
            await producer.begin_transaction()
            await publisher.publish(alerts)
            if self.letters and letters:
                drafts = [d.draft for d in letters]
                await send_letters(producer, self.letters.topic, drafts, self.letters.size)
            await producer.send_offsets_to_transaction({partition: offset}, self.group)
            await producer.commit_transaction()
        except ProducerFenced:
            # What this producer published in the transaction is aborted, never read.
            self._let_go(partition)
            self._fenced.add(partition)
            if await self._still_held(partition):
                raise FencedButHeld(
                    f"the broker fenced the transactions of {partition}, which is still this "
                    "indexer's (a transaction that outlived its timeout)"
                ) from None
            return
        except BaseException:
            # The retry starts the next producer: it publishes the alerts again, in a
            # transaction of its own. This one's stop waits for its batches, so for the
            # broker: it stops in the background, and the next one fences it if need be.
            self._let_go(partition)
            raise
        self._settled(partition, offset.offset)
        self._floor[partition] = offset.offset

    async def _below_floor(self, partition: TopicPartition, offset: OffsetAndMetadata) -> bool:
        """Whether the group has committed `offset` already. Read first once the partition's
        producer has started, which waits for the transaction of the previous producer of
        the same id to end: the previous holder's (if it committed after the consumer had
        fetched its starting offset), or this indexer's own, heard as failed (its answer
        lost) and committed all the same. The alerts below the floor are not published
        again, and the group's offset never moves back."""
        if partition not in self._floor:
            # Its read failed when the producer started.
            await self._read_floor(partition)
        floor = self._floor[partition]
        if floor is None:
            return False
        self._settled(partition, floor)
        return floor >= int(offset.offset)

    async def _read_floor(self, partition: TopicPartition) -> None:
        async with asyncio.timeout(FLOOR_READ_SECONDS):
            self._floor[partition] = await self.committed(partition)

    async def _still_held(self, partition: TopicPartition) -> bool:
        """Asked after a fence; if the group has given the partition to another indexer,
        which replays it from the last commit, it is let go of here."""
        held = await self.holds(partition)
        self._fenced.discard(partition)
        if held:
            return True
        log.warning("alerts of %s not committed: the partition moved on", partition)
        self._held.discard(partition)
        self._forget([partition])
        return False

    def _settled(self, partition: TopicPartition, offset: int) -> None:
        self.pending.settled(partition, offset)
        if self.letters:
            self.letters.settled(partition, offset)

    def _forget(self, partitions: Sequence[TopicPartition]) -> None:
        self.pending.forget(partitions)
        if self.letters:
            self.letters.forget(partitions)

    async def _close(self, partition: TopicPartition) -> None:
        self._floor.pop(partition, None)
        producer = self._producers.pop(partition, None)
        if producer is not None:
            await _stopped(producer)

    def _let_go(self, partition: TopicPartition) -> None:
        self._floor.pop(partition, None)
        producer = self._producers.pop(partition, None)
        if producer is not None:
            stopping = asyncio.create_task(_stopped(producer), name=f"stopping {partition}")
            self._stopping.add(stopping)
            stopping.add_done_callback(self._stopping.discard)


async def _stopped(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(Exception):
        await producer.stop()
