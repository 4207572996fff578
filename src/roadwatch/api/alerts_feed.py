"""Alerts for SSE clients: one Kafka consumer per API process, fanned out to every client.

Each event's id is the feed's position after it, `partition:next_offset` for every partition,
so a client that reconnects with Last-Event-ID is replayed exactly what it missed before it
rejoins the live fan-out: from the window of recent alerts the feed keeps, which bounds what
a resume costs; what the window no longer holds, the client is told to read from
/alerts/history.
"""

import asyncio
import logging
from collections import deque
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from roadwatch.alerts import NotAnAlert, read_alert
from roadwatch.api.event_ids import decode_position, encode_position, gap_data
from roadwatch.api.recent_alerts import Gap, Kept, Position, RecentAlerts
from roadwatch.errors import RoadwatchError
from roadwatch.kafka.reader import Fetched, Reader, SkipUnreadable, consumer
from roadwatch.kafka.reopening import ReopeningConsumer
from roadwatch.kafka.types import AIOKafkaConsumer, Record, TopicPartition
from roadwatch.logs import Throttled
from roadwatch.runtime.lifecycle import cancelled, started
from roadwatch.runtime.readiness import NotReady
from roadwatch.runtime.retry import retry_until_done

log = logging.getLogger(__name__)


class ClientTooSlow(RoadwatchError):
    """The client fell further behind than its buffer holds."""


@dataclass(frozen=True, slots=True)
class AlertEvent:
    id: str
    data: str
    # "alert"; "gap": alerts missed that the window no longer holds; "position": where the
    # stream starts, an id without data (a browser's EventSource keeps it as its
    # Last-Event-ID and dispatches nothing).
    kind: str = "alert"


class _Subscriber:
    """A client's bounded buffer; overflowing it drops the client rather than block others."""

    def __init__(self, capacity: int, *, rule: str | None) -> None:
        self._capacity = capacity
        self._items: deque[Kept] = deque()
        self._ready = asyncio.Event()
        self.rule = rule
        self.dropped = False

    def wants(self, alert: Kept) -> bool:
        return self.rule is None or self.rule in alert.rules

    def offer(self, item: Kept) -> None:
        if self.dropped or not self.wants(item):
            return
        if len(self._items) >= self._capacity:
            self.dropped = True
            self._items.clear()
        else:
            self._items.append(item)
        self._ready.set()

    async def next(self) -> Kept:
        while not self._items and not self.dropped:
            self._ready.clear()
            await self._ready.wait()
        if self.dropped:
            raise ClientTooSlow
        return self._items.popleft()


class FeedDown(NotReady):
    """The feed is not following the alerts topic; the message says why."""


class KafkaAlertFeed:
    """Follows the alerts topic for every client of this process.

    A record that is not an alert (a tombstone, bytes that are not a JSON object) is skipped,
    logged and counted. Any failure of the consumer restarts it with backoff from where it
    was: connected clients keep their streams and see nothing but a pause, and `ping` says
    the feed is down, with the reason, until it follows again.
    """

    def __init__(
        self,
        *,
        kafka: Mapping[str, Any],
        topic: str,
        client_buffer: int = 1000,
        skipped: Callable[[], None] = lambda: None,
        clients_changed: Callable[[int], None] = lambda _count: None,
        first_delay: float = 0.2,
        longest_delay: float = 10.0,
        resume_window: int = 10_000,
        resume_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self._kafka = kafka
        self._topic = topic
        self._client_buffer = client_buffer
        self._skipped = skipped
        self._log = Throttled(log)
        self._clients_changed = clients_changed
        self._first_delay = first_delay
        self._longest_delay = longest_delay
        self._subscribers: set[_Subscriber] = set()
        self._recent = RecentAlerts(most=resume_window, most_bytes=resume_bytes)
        self._next: Position = {}
        self._consumer = ReopeningConsumer(self._open)
        self._unreadable = SkipUnreadable(counted=lambda _reason: skipped())
        self._pump: asyncio.Task[None] | None = None
        self._down: str | None = None

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    async def start(self) -> None:
        """Follow the topic from its end; raise if it cannot be followed at all."""
        self._consumer.adopt(await self._open())
        self._pump = asyncio.create_task(self._run(), name="alert feed")

    async def stop(self) -> None:
        if self._pump is not None:
            await cancelled(self._pump)
        await self._consumer.close()

    async def ping(self) -> None:
        if self._down is not None:
            raise FeedDown(f"the alert feed is down: {self._down}")
        following = self._consumer.current
        if following is None or self._pump is None or self._pump.done():
            raise FeedDown("the alert feed is not running")
        await following.topics()

    async def _open(self) -> AIOKafkaConsumer:
        """A consumer of every partition, at the positions reached so far; a partition new
        to the feed is read from as far back as the resume window reaches, into the window
        only, and followed from its end."""
        following = consumer(self._topic, **self._kafka, enable_auto_commit=False)
        await started(following)
        try:
            partitions = list(following.assignment())
            if not partitions:
                raise RoadwatchError(f"the alerts topic {self._topic!r} does not exist")
            new = [tp for tp in partitions if tp.partition not in self._next]
            for tp in partitions:
                if tp.partition in self._next:
                    following.seek(tp, self._next[tp.partition])
            if new:
                await self._fill_window(following, new)
        except BaseException:
            await following.stop()
            raise
        return following

    async def _fill_window(self, following: AIOKafkaConsumer, new: list[TopicPartition]) -> None:
        ends = await following.end_offsets(new)
        firsts = await following.beginning_offsets(new)
        back = self._recent.most // len(new) + 1
        for tp in new:
            start = max(firsts[tp], ends[tp] - back)
            following.seek(tp, start)
            self._recent.start_at(tp.partition, start)
            self._next[tp.partition] = start
        reader = Reader(following, on_unreadable=self._unreadable)
        behind = [tp for tp in new if self._next[tp.partition] < ends[tp]]
        # What was written before `ends` goes to the window only; what came after, to the
        # clients too, as when followed.
        live_from = {tp.partition: ends[tp] for tp in new}
        while behind:
            self._take(await reader.read(*behind, timeout_ms=1000), live_from=live_from)
            behind = [tp for tp in behind if await following.position(tp) < ends[tp]]
        for tp in new:
            self._next[tp.partition] = max(self._next[tp.partition], ends[tp])

    async def _run(self) -> None:
        # For good: a failure reopens the consumer, which resumes where the feed stopped. A
        # refusal that time cannot mend (an ACL) ends it, and ping() says so.
        await retry_until_done(
            lambda: self._consumer.use(self._follow),
            what="following the alerts topic",
            stop=asyncio.Event(),
            first_delay=self._first_delay,
            longest_delay=self._longest_delay,
            on_failure=self._failed,
        )

    def _failed(self, error: Exception) -> None:
        self._down = f"{type(error).__name__}: {error}"[:300]

    async def _follow(self, following: AIOKafkaConsumer) -> None:
        reader = Reader(following, on_unreadable=self._unreadable)
        while True:
            fetched = await reader.read(timeout_ms=1000)
            if self._down is not None:
                log.info("the alert feed follows the alerts topic again")
                self._down = None
            self._take(fetched, live_from={})

    def _take(self, fetched: Fetched, *, live_from: Position) -> None:
        """Keep each alert read in the window, and offer those from `live_from` on (per
        partition; from the start where it names none) to every client."""
        for records in fetched.records.values():
            for record in records:
                alert = self._alert(record)
                if alert is None:
                    continue
                self._recent.add(alert)
                if alert.offset >= live_from.get(alert.partition, 0):
                    for subscriber in self._subscribers:
                        subscriber.offer(alert)
        for tp, end in fetched.ends.items():
            self._next[tp.partition] = end

    def _alert(self, record: Record) -> Kept | None:
        """The alert, or None (skipped, logged, counted) if the record holds none."""
        try:
            alert = read_alert(record.value)
        except NotAnAlert as error:
            problem = str(error)
        else:
            rules = frozenset(str(rule) for rule in alert.rule_ids)
            return Kept(record.partition, record.offset, alert.text, rules)
        self._skipped()
        self._log.warning(
            "not an alert",
            "skipped the record at %s[%d]@%d: not an alert (%s)",
            record.topic,
            record.partition,
            record.offset,
            problem,
        )
        return None

    async def events(
        self, last_event_id: str | None = None, *, rule: str | None = None
    ) -> AsyncGenerator[AlertEvent, None]:
        """The alerts from now on, or from after `last_event_id`; with `rule`, only those
        that matched the rule of that id. ClientTooSlow ends it."""
        resume = decode_position(last_event_id) if last_event_id else None
        subscriber = _Subscriber(self._client_buffer, rule=rule)
        # No await from here to the window's answer: the live buffer starts exactly at
        # `live_from`, and the window holds exactly what came before it.
        self._subscribers.add(subscriber)
        live_from = dict(self._next)
        cursor = dict(live_from)
        missed: list[Kept] = []
        gaps: list[Gap] = []
        if resume is not None:
            cursor.update({p: o for p, o in resume.items() if p in live_from})
            missed, gaps = self._recent.since(cursor, until=live_from)
        self._clients_changed(self.clients)
        try:
            # Sent first, so that a client that loses its stream before any alert came
            # resumes from where it connected, not from wherever the feed is by then.
            if cursor:
                yield AlertEvent(encode_position(cursor), "", kind="position")
            for gap in gaps:
                cursor[gap.partition] = gap.resumed_at
                yield AlertEvent(encode_position(cursor), gap_data(gap), kind="gap")
            for alert in missed:
                cursor[alert.partition] = alert.offset + 1
                if subscriber.wants(alert):
                    yield AlertEvent(encode_position(cursor), alert.data)
            while True:
                alert = await subscriber.next()
                if alert.offset < cursor.get(alert.partition, 0):
                    continue
                cursor[alert.partition] = alert.offset + 1
                yield AlertEvent(encode_position(cursor), alert.data)
        finally:
            self._subscribers.discard(subscriber)
            self._clients_changed(self.clients)
