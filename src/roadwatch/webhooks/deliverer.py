"""The deliverer: reads alerts, and POSTs each to every subscription that wants it, retrying
those that fail from the database, until each is acknowledged or given up.

An alert's offset is committed once every delivery it made is either acknowledged and
recorded, or held in the database for a retry: a kill -9 replays only alerts some
subscription has not had. A replayed alert's deliveries are checked against the record, so
what was acknowledged is not sent again.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from uuid import UUID

from roadwatch.kafka.reader import Reader
from roadwatch.kafka.types import (
    CommitFailedError,
    ConsumerRebalanceListener,
    KafkaError,
    Record,
    TopicPartition,
)
from roadwatch.kafka.unreadable import Unreadable
from roadwatch.logs import Throttled
from roadwatch.runtime.readiness import STUCK_AFTER, NotReady
from roadwatch.runtime.retry import GaveUpOnShutdown, every, retry_until_done
from roadwatch.shutdown import STOP_GRACE, sleep_until_stopped
from roadwatch.webhooks.attempts import Attempter
from roadwatch.webhooks.lane_set import LaneSet
from roadwatch.webhooks.metrics import DeliveryMetrics
from roadwatch.webhooks.offsets import OffsetTracker
from roadwatch.webhooks.planning import deliveries_of
from roadwatch.webhooks.ports import AlertsConsumer, DeadLetterSink, Poster
from roadwatch.webhooks.recorder import Recorder
from roadwatch.webhooks.retries import RetrySchedule
from roadwatch.webhooks.store import WebhookStore
from roadwatch.webhooks.subscriptions import Delivery
from roadwatch.webhooks.upkeep import claim_retries, keep_house

log = logging.getLogger(__name__)

# How often the offsets of settled alerts are committed.
COMMIT_EVERY = 0.2


# How long a stopping deliverer waits for the outcomes of its last attempts to be recorded,
# after waiting up to the webhook timeout for the attempts themselves.
RECORDING_ON_STOP = 3.0


def stop_grace(webhook_timeout: float) -> float:
    """How long a deliverer may take to stop: the attempts under way end within the webhook
    timeout, their outcomes are recorded, and the offsets committed."""
    return max(STOP_GRACE, webhook_timeout + RECORDING_ON_STOP + 2)


class Deliverer:
    def __init__(
        self,
        consumer: AlertsConsumer,
        *,
        topic: str,
        store: WebhookStore,
        sender: Poster,
        dead_letters: DeadLetterSink,
        metrics: DeliveryMetrics,
        schedule: RetrySchedule,
        stop: asyncio.Event,
        concurrency: int = 4,
        capacity: int = 256,
        timeout: float = 10.0,
        poll_interval: float = 0.5,
        history_days: float = 7.0,
        max_unsettled: int = 10_000,
    ) -> None:
        self._consumer = consumer
        self._reader = Reader(consumer, on_unreadable=self._skip_unreadable)
        self._topic = topic
        self._store = store
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._stop = stop
        self._log = Throttled(log)
        self._timeout = timeout
        self._poll_interval = poll_interval
        self._history = timedelta(days=history_days)
        self._max_unsettled = max_unsettled
        self._recorder = Recorder(store, stop=stop)
        self._offsets = OffsetTracker()
        attempt = Attempter(
            sender=sender,
            schedule=schedule,
            dead_letters=dead_letters,
            recorder=self._recorder,
            metrics=metrics,
            stop=stop,
        )
        self._lanes = LaneSet(
            store,
            attempt,
            metrics=metrics,
            stop=stop,
            concurrency=concurrency,
            capacity=capacity,
            timeout=timeout,
        )
        # Per partition, the end of the topic when it was assigned: records before it may
        # be replays, whose deliveries are checked against what was recorded.
        self._replays_until: dict[int, int] = {}
        # Set whenever a delivery settles.
        self._progress = asyncio.Event()

    def listener(self) -> ConsumerRebalanceListener:
        return _Rebalance(self)

    async def run(self) -> None:
        lease = 3 * self._timeout + 5
        tasks = [
            asyncio.create_task(self._recorder.run()),
            asyncio.create_task(
                claim_retries(
                    self._store, self._lanes, lease=lease, poll_interval=self._poll_interval
                )
            ),
            asyncio.create_task(every(COMMIT_EVERY, self._commit, what="committing alerts")),
            asyncio.create_task(keep_house(self._store, self._metrics, history=self._history)),
        ]
        try:
            await self._consume()
        finally:
            await self._lanes.close()
            self._recorder.close()
            # What is not recorded by then is replayed from Kafka by the next start.
            with contextlib.suppress(GaveUpOnShutdown, TimeoutError):
                await asyncio.wait_for(tasks[0], timeout=RECORDING_ON_STOP)
            for task in tasks[1:]:
                task.cancel()
            await asyncio.gather(*tasks[1:], return_exceptions=True)
            await self._commit()
            # What is left unsettled is replayed by the next owner: nothing to wait for when
            # the consumer leaves the group.
            self._offsets.forget(self._offsets.partitions())

    async def ping_store(self) -> None:
        await self._store.version()

    async def ping_broker(self) -> None:
        await self._consumer.topics()

    async def check_progress(self) -> None:
        """Raise NotReady while deliveries have not been recorded for too long: their
        offsets wait uncommitted, and the backlog grows."""
        failing = self._recorder.failing_for()
        if failing > STUCK_AFTER:
            raise NotReady(f"recording webhook deliveries has failed for {failing:.0f} s")
        silent = self._recorder.unanswered_for()
        if silent > STUCK_AFTER:
            raise NotReady(f"recording webhook deliveries has not answered for {silent:.0f} s")

    # Reading alerts.

    async def _consume(self) -> None:
        while not self._stop.is_set():
            if self._offsets.pending() >= self._max_unsettled:
                # Receivers or the database are behind: read on once they catch up.
                await sleep_until_stopped(self._stop, 0.05)
                continue
            fetched = await self._reader.read(timeout_ms=200, max_records=1000)
            # Read after the batch was fetched: an alert published after a subscription
            # was made finds it.
            await self._lanes.follow()
            for partition, end in fetched.ends.items():
                records = fetched.records.get(partition, [])
                await self._dispatch(partition.partition, records)
                if not records or records[-1].offset < end - 1:
                    # The last read was unreadable, and dead-lettered: nothing to wait for.
                    self._offsets.taken(partition.partition, end - 1, 0)

    async def _dispatch(self, partition: int, records: list[Record]) -> None:
        planned: list[tuple[Record, list[Delivery]]] = []
        rejected: list[tuple[Record, str]] = []
        # The subscriptions as they stand for this batch: looked up once, not per record.
        webhooks = self._lanes.webhooks()
        for record in records:
            read = deliveries_of(record, webhooks)
            if isinstance(read, str):
                rejected.append((record, read))
                read = []
            planned.append((record, read))
        if rejected:
            await self._skip(rejected)
        replay_end = self._replays_until.get(partition, -1)
        maybe_replayed = [d.id for record, ds in planned if record.offset < replay_end for d in ds]
        seen: set[UUID] = set()
        if maybe_replayed:
            seen = await retry_until_done(
                lambda: self._store.seen(maybe_replayed),
                what="checking replayed deliveries",
                stop=self._stop,
            )
        held: list[Delivery] = []
        for record, deliveries in planned:
            fresh = [d for d in deliveries if d.id not in seen]
            self._offsets.taken(partition, record.offset, len(fresh))
            for delivery in fresh:
                delivery.settle = self._settler(partition, record.offset)
                lane = self._lanes.get(delivery.webhook_id)
                if lane is None or not lane.offer(delivery):
                    held.append(delivery)
        if held:
            self._recorder.hold(held)

    def _settler(self, partition: int, offset: int) -> Callable[[], None]:
        def settle() -> None:
            self._offsets.settled(partition, offset)
            self._progress.set()

        return settle

    async def _skip_unreadable(self, unreadable: Sequence[Unreadable]) -> None:
        await self._skip([(record, f"{record.reason}: {record.detail}") for record in unreadable])

    async def _skip(self, rejected: Sequence[tuple[Record | Unreadable, str]]) -> None:
        """Dead-letter a batch's records that are not alerts, together."""
        self._metrics.skipped.inc(len(rejected))
        # A line a batch at most, however many it holds: each letter carries its own reason.
        first, why = rejected[0]
        self._log.warning(
            "not alerts",
            "dead-lettered %d alerts topic record(s) unsent, e.g. %d/%d: %s",
            len(rejected),
            first.partition,
            first.offset,
            why,
        )
        letters = [(record.value, record.key, reason) for record, reason in rejected]
        await retry_until_done(
            lambda: self._dead_letters.records(letters),
            what="dead-lettering records",
            stop=self._stop,
        )

    # Offsets and upkeep.

    async def _commit(self) -> None:
        offsets = self._offsets.committable()
        if not offsets:
            return
        try:
            await self._consumer.commit(
                {TopicPartition(self._topic, p): offset for p, offset in offsets.items()}
            )
        except (CommitFailedError, KafkaError) as error:
            # A rebalance moved the partition: its new owner replays from the last commit,
            # and skips what was acknowledged.
            log.info("commit of webhook offsets refused (%s)", error)
            return
        self._offsets.committed(offsets)

    # Rebalances.

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        try:
            ends = await self._consumer.end_offsets(list(partitions))
        except KafkaError:
            # Unknown: every record may be a replay, so every one is checked.
            ends = dict.fromkeys(partitions, 2**62)
        self._replays_until.update({tp.partition: end for tp, end in ends.items()})

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        numbers = {tp.partition for tp in partitions}
        # Let what was taken from them settle first, so that their next owner does not send
        # again what is being acknowledged now; a slow receiver's share is held by then.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timeout + 2):
                while self._offsets.pending(numbers):
                    self._progress.clear()
                    await self._progress.wait()
        await self._commit()
        self._offsets.forget(numbers)
        for partition in numbers:
            self._replays_until.pop(partition, None)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, deliverer: Deliverer) -> None:
        self._deliverer = deliverer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._deliverer.revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._deliverer.assigned(assigned)
