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
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import TypeAlias
from uuid import UUID

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord

from roadwatch.alerts import NotAnAlert, read_alert
from roadwatch.kafka.reader import Reader
from roadwatch.kafka.unreadable import Unreadable
from roadwatch.runtime.readiness import STUCK_AFTER, NotReady
from roadwatch.runtime.retry import GaveUpOnShutdown, retry_until_done
from roadwatch.shutdown import sleep_until_stopped
from roadwatch.text import printable
from roadwatch.webhooks.dead_letters import DeadLetters
from roadwatch.webhooks.lanes import Lane
from roadwatch.webhooks.metrics import DeliveryMetrics
from roadwatch.webhooks.offsets import OffsetTracker
from roadwatch.webhooks.recorder import Recorder
from roadwatch.webhooks.retries import Outcome, RetrySchedule, is_retried
from roadwatch.webhooks.sender import Response, Sender
from roadwatch.webhooks.signing import signed_headers
from roadwatch.webhooks.store import Attempt, WebhookStore
from roadwatch.webhooks.subscriptions import (
    ALERT_EVENT,
    Delivery,
    Webhook,
    delivery_id,
    event_body,
)

log = logging.getLogger(__name__)

Record: TypeAlias = ConsumerRecord[bytes, bytes]


class Deliverer:
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        *,
        topic: str,
        store: WebhookStore,
        sender: Sender,
        dead_letters: DeadLetters,
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
        self._sender = sender
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._schedule = schedule
        self._stop = stop
        self._concurrency = concurrency
        self._capacity = capacity
        self._timeout = timeout
        self._poll_interval = poll_interval
        self._history = timedelta(days=history_days)
        self._max_unsettled = max_unsettled
        self._recorder = Recorder(store, stop=stop)
        self._offsets = OffsetTracker()
        self._lanes: dict[UUID, Lane] = {}
        self._version: tuple[int, int] | None = None
        # Per partition, the end of the topic when it was assigned: records before it may
        # be replays, whose deliveries are checked against what was recorded.
        self._replays_until: dict[int, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Set whenever a delivery settles.
        self._progress = asyncio.Event()

    def listener(self) -> ConsumerRebalanceListener:
        return _Rebalance(self)

    async def run(self) -> None:
        tasks = [
            asyncio.create_task(self._recorder.run()),
            asyncio.create_task(self._retry_loop()),
            asyncio.create_task(self._commit_loop()),
            asyncio.create_task(self._housekeeping_loop()),
        ]
        try:
            await self._consume()
        finally:
            lanes = list(self._lanes.values())
            for lane in lanes:
                lane.close()
            await asyncio.gather(*(lane.finished(within=self._timeout) for lane in lanes))
            self._recorder.close()
            # What is not recorded by then is replayed from Kafka by the next start.
            with contextlib.suppress(GaveUpOnShutdown, TimeoutError):
                await asyncio.wait_for(tasks[0], timeout=self._timeout)
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

    # Reading alerts.

    async def _consume(self) -> None:
        while not self._stop.is_set():
            if self._offsets.pending() >= self._max_unsettled:
                # Receivers or the database are behind: read on once they catch up.
                await sleep_until_stopped(self._stop, 0.05)
                continue
            fetched = await self._reader.read(timeout_ms=200, max_records=1000)
            await self._follow_subscriptions()
            for partition, end in fetched.ends.items():
                records = fetched.records.get(partition, [])
                await self._dispatch(partition.partition, records)
                if not records or records[-1].offset < end - 1:
                    # The last read was unreadable, and dead-lettered: nothing to wait for.
                    self._offsets.taken(partition.partition, end - 1, 0)

    async def _dispatch(self, partition: int, records: list[Record]) -> None:
        planned: list[tuple[Record, list[Delivery]]] = []
        rejected: list[tuple[Record, str]] = []
        for record in records:
            read = self._deliveries_of(record)
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

    def _deliveries_of(self, record: Record) -> list[Delivery] | str:
        """The deliveries an alert makes, or why the record is not an alert."""
        try:
            alert = read_alert(record.value)
            published = _published(record.timestamp)
        except NotAnAlert as error:
            return f"not an alert: {error}"
        except (OverflowError, OSError, ValueError) as error:
            return f"not an alert: its timestamp {record.timestamp}: {error}"
        wanted = [
            lane.webhook
            for lane in self._lanes.values()
            if lane.webhook.wants(alert.rule_ids, published)
        ]
        if not wanted:
            return []
        body = event_body(ALERT_EVENT, alert.id, published, orjson.Fragment(alert.text))
        now = datetime.now(UTC)
        return [
            Delivery(
                id=delivery_id(webhook.id, alert.id),
                webhook_id=webhook.id,
                body=body,
                created_at=now,
                published_at=published,
            )
            for webhook in wanted
        ]

    async def _skip_unreadable(self, unreadable: Sequence[Unreadable]) -> None:
        await self._skip([(record, f"{record.reason}: {record.detail}") for record in unreadable])

    async def _skip(self, rejected: Sequence[tuple[Record | Unreadable, str]]) -> None:
        """Dead-letter a batch's records that are not alerts, together."""
        self._metrics.skipped.inc(len(rejected))
        # One line a batch, however many it holds: each letter carries its own reason.
        first, why = rejected[0]
        log.warning(
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

    async def _follow_subscriptions(self) -> None:
        """Bring the lanes in line with the subscriptions, if any changed: read after the
        batch was fetched, so that an alert published after a subscription was made finds it."""
        version = await retry_until_done(
            self._store.version, what="reading the webhook subscriptions", stop=self._stop
        )
        if version == self._version:
            return
        version, webhooks = await retry_until_done(
            self._store.subscriptions, what="reading the webhook subscriptions", stop=self._stop
        )
        wanted = {webhook.id: webhook for webhook in webhooks if webhook.enabled}
        for webhook_id in self._lanes.keys() - wanted.keys():
            lane = self._lanes.pop(webhook_id)
            # Disabled or removed: what waited in its queue is not sent.
            for delivery in lane.close():
                if delivery.settle is not None:
                    delivery.settle()
            self._background(lane.finished(within=self._timeout))
        for webhook_id, webhook in wanted.items():
            existing = self._lanes.get(webhook_id)
            if existing is not None:
                existing.webhook = webhook
                continue
            lane = Lane(
                webhook, self._attempt, concurrency=self._concurrency, capacity=self._capacity
            )
            lane.start()
            self._lanes[webhook_id] = lane
        self._metrics.subscriptions.set(len(self._lanes))
        self._version = version

    # Attempts.

    async def _attempt(self, webhook: Webhook, delivery: Delivery) -> None:
        delivery.attempts += 1
        # Whole milliseconds: the precision of the cursors that page through attempts.
        now = _to_millisecond(datetime.now(UTC))
        try:
            headers = signed_headers(
                str(delivery.id),
                delivery.body,
                secrets_in_force=webhook.secrets_in_force(now),
                at=now,
            )
            response = await self._sender.post(webhook.url, delivery.body, headers)
        except Exception as error:
            # Not expected: the sender answers every failure with a Response. Tried again
            # as after any failure, rather than left unsettled, which would hold every
            # alert's offset behind it.
            log.exception("attempting delivery %s failed inside roadwatch", delivery.id)
            response = Response(None, 0.0, printable(f"{type(error).__name__}: {error}", limit=500))
        finished = datetime.now(UTC)
        if delivery.attempts == 1 and delivery.published_at is not None:
            delay = (finished - delivery.published_at).total_seconds()
            self._metrics.first_attempt_delay.observe(max(delay, 0.0))
        outcome, next_attempt_at = self._judge(delivery, response, finished)
        if outcome == Outcome.FAILED:
            reason = response.error or f"HTTP {response.status}"
            await retry_until_done(
                lambda: self._dead_letters.delivery(delivery, url=webhook.url, reason=reason),
                what="dead-lettering a delivery",
                stop=self._stop,
            )
        self._metrics.attempts.labels(outcome.value).inc()
        self._recorder.add(
            Attempt(
                delivery=delivery,
                attempted_at=now,
                outcome=outcome,
                status=response.status,
                latency_ms=response.latency_ms,
                error=response.error,
                next_attempt_at=next_attempt_at,
            )
        )

    def _judge(
        self, delivery: Delivery, response: Response, now: datetime
    ) -> tuple[Outcome, datetime | None]:
        if response.acknowledged:
            return Outcome.DELIVERED, None
        if not is_retried(response.status) or self._schedule.gives_up(delivery.created_at, now):
            return Outcome.FAILED, None
        delay = self._schedule.delay(delivery.attempts, retry_after=response.retry_after)
        return Outcome.RETRY, now + timedelta(seconds=delay)

    async def _retry_loop(self) -> None:
        """Claim the deliveries due for a retry, as many as each lane has room for; at once
        again while some lane's claim came back full (a backlog draining)."""
        lease = 3 * self._timeout + 5
        while True:
            rooms = {id_: lane.room for id_, lane in self._lanes.items() if lane.room}
            try:
                claimed = await self._store.claim_due(rooms, lease=lease)
            except Exception as error:
                log.warning("claiming webhook retries failed (%s); trying again", error)
                claimed = []
            per_lane: dict[UUID, int] = {}
            for delivery in claimed:
                lane = self._lanes.get(delivery.webhook_id)
                if lane is not None:
                    lane.take_claimed(delivery)
                per_lane[delivery.webhook_id] = per_lane.get(delivery.webhook_id, 0) + 1
            draining = any(per_lane.get(id_) == room for id_, room in rooms.items())
            await asyncio.sleep(0.01 if draining else self._poll_interval)

    # Offsets and upkeep.

    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(0.2)
            await self._commit()

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

    async def _housekeeping_loop(self) -> None:
        pruned_at = datetime.min.replace(tzinfo=UTC)
        while True:
            try:
                count, oldest = await self._store.backlog()
                self._metrics.pending.set(count)
                now = datetime.now(UTC)
                self._metrics.oldest_pending.set(
                    0 if oldest is None else (now - oldest).total_seconds()
                )
                if now - pruned_at > timedelta(minutes=10):
                    removed = await self._store.prune(now - self._history)
                    if removed:
                        log.info("removed %d webhook records older than the history kept", removed)
                    pruned_at = now
            except Exception as error:
                log.warning("webhook upkeep failed (%s); trying again", error)
            await asyncio.sleep(5)

    def _background(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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


def _published(timestamp: int) -> datetime:
    """When a record was published; a record without a timestamp (-1) counts as now."""
    if timestamp < 0:
        return datetime.now(UTC)
    return datetime.fromtimestamp(timestamp / 1000, UTC)


def _to_millisecond(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, deliverer: Deliverer) -> None:
        self._deliverer = deliverer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._deliverer.revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._deliverer.assigned(assigned)
