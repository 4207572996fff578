"""The watchlists topic: every rule as a record keyed by its id, a tombstone for a deleted one.

The topic is compacted, so it always holds the latest version of every rule. The API writes
it (after its database); every indexer reads it to the end before it consumes detections,
then follows it, so a change reaches every indexer within a broker round trip.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol
from uuid import UUID

from roadwatch.errors import ConfigurationError
from roadwatch.kafka.reader import Reader, SkipUnreadable
from roadwatch.kafka.reopening import ReopeningConsumer
from roadwatch.kafka.types import AIOKafkaConsumer, AIOKafkaProducer, Record, TopicPartition
from roadwatch.logs import Throttled
from roadwatch.rejections import Reason
from roadwatch.runtime.lifecycle import cancelled, started
from roadwatch.runtime.retry import retry_until_done
from roadwatch.watchlists.matching import RuleIndex
from roadwatch.watchlists.rules import (
    MAX_RULES,
    InvalidRule,
    Rule,
    rule_from_json,
    rule_to_json,
)

log = logging.getLogger(__name__)

ConsumerFactory = Callable[[], AIOKafkaConsumer]


class Retry(Protocol):
    """Runs `step` until it succeeds, through failures (the indexer's ErrorPolicy.retry)."""

    def __call__(self, step: Callable[[], Awaitable[None]], *, what: str) -> Awaitable[None]: ...


class RuleLog:
    """The rules a reading of the topic has reached, and where it has reached."""

    def __init__(self, topic: str, *, max_rules: int = MAX_RULES) -> None:
        self.topic = topic
        self.max_rules = max_rules
        self.rules: dict[UUID, Rule] = {}
        self.next: dict[int, int] = {}
        self.skipped = 0
        self._unreadable = SkipUnreadable(counted=self._count_unreadable)
        self._log = Throttled(log)

    def _count_unreadable(self, _reason: Reason) -> None:
        self.skipped += 1

    def reader(self, consumer: AIOKafkaConsumer) -> Reader:
        return Reader(consumer, on_unreadable=self._unreadable)

    @property
    def ever_written(self) -> bool:
        return any(offset > 0 for offset in self.next.values())

    def apply(self, record: Record) -> None:
        self.next[record.partition] = record.offset + 1
        try:
            if record.key is None:
                raise InvalidRule("it has no key")
            rule_id = UUID(record.key.decode())
            if record.value is None:
                self.rules.pop(rule_id, None)
                return
            rule = rule_from_json(record.value)
            if rule.id != rule_id:
                raise InvalidRule(f"keyed {rule_id} but holds rule {rule.id}")
            if rule.id not in self.rules and len(self.rules) >= self.max_rules:
                raise InvalidRule(f"one rule more than the {self.max_rules:,} an indexer keeps")
        except (InvalidRule, UnicodeDecodeError, ValueError) as error:
            self.skipped += 1
            self._log.warning(
                "not a rule",
                "skipped the record at %s[%d]@%d: not a rule (%s)",
                record.topic,
                record.partition,
                record.offset,
                error,
            )
            return
        self.rules[rule.id] = rule

    async def open(self, consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        """Start `consumer` on every partition, where this reading has reached."""
        await started(consumer)
        try:
            partitions = [tp for tp in consumer.assignment() if tp.topic == self.topic]
            if not partitions:
                raise ConfigurationError(
                    f"the watchlists topic {self.topic!r} does not exist: create it compacted "
                    "(`roadwatch infra up` does), or set WATCHLISTS_TOPIC"
                )
            for tp in partitions:
                if tp.partition in self.next:
                    consumer.seek(tp, self.next[tp.partition])
                else:
                    await consumer.seek_to_beginning(tp)
        except BaseException:
            await consumer.stop()
            raise
        return partitions

    async def read_to_end(
        self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
    ) -> None:
        """Read every record written before this call."""
        ends = await consumer.end_offsets(partitions)
        behind = dict(ends)
        reader = self.reader(consumer)
        while behind:
            for records in (await reader.read(*behind, timeout_ms=500)).records.values():
                for record in records:
                    self.apply(record)
            for tp, end in list(behind.items()):
                # Compaction leaves gaps: the position, not the last offset read, says where.
                position = await consumer.position(tp)
                if position >= end:
                    self.next[tp.partition] = position
                    del behind[tp]


async def read_rules(consumer: AIOKafkaConsumer, topic: str) -> RuleLog:
    """The topic's rules as they stand now."""
    reading = RuleLog(topic)
    partitions = await reading.open(consumer)
    try:
        await reading.read_to_end(consumer, partitions)
    finally:
        await consumer.stop()
    return reading


class RuleFollower:
    """The rules in force for an indexer: the topic, read to its end at start, then followed.

    While the topic has never been written, the seed rule (SUSPICIOUS_VEHICLE) is in force.
    A failure while following keeps the rules last read in force, and the reading goes on
    with backoff from where it was, through `retry`: the indexer's error policy, so that
    one lasting too long makes the indexer not ready, saying why.
    """

    def __init__(
        self,
        consumers: ConsumerFactory,
        *,
        topic: str,
        seed: Rule,
        retry: Retry | None = None,
    ) -> None:
        self._consumers = consumers
        self._seed = seed
        self._log = RuleLog(topic)
        self._index = RuleIndex([seed])
        self._consumer = ReopeningConsumer(self._open)
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._retry: Retry = retry or (
            lambda step, *, what: retry_until_done(step, what=what, stop=self._stop)
        )

    @property
    def current(self) -> RuleIndex:
        return self._index

    @property
    def skipped(self) -> int:
        return self._log.skipped

    async def start(self) -> None:
        """Read the topic to its end; ConfigurationError if it does not exist."""
        consumer = self._consumers()
        partitions = await self._log.open(consumer)
        try:
            await self._log.read_to_end(consumer, partitions)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer.adopt(consumer)
        self._rebuild()
        log.info("following %d watchlist rule(s) on %s", len(self._index), self._log.topic)
        self._task = asyncio.create_task(self._follow(), name="watchlist follower")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await cancelled(self._task)
        await self._consumer.close()

    async def _follow(self) -> None:
        # One poll a step: a poll that succeeds ends the failure the policy is timing.
        while not self._stop.is_set():
            await self._retry(self._poll, what="following the watchlists")

    async def _open(self) -> AIOKafkaConsumer:
        consumer = self._consumers()
        await self._log.open(consumer)
        return consumer

    async def _poll(self) -> None:
        fetched = await self._consumer.use(
            lambda consumer: self._log.reader(consumer).read(timeout_ms=1000)
        )
        for records in fetched.records.values():
            for record in records:
                self._log.apply(record)
        for tp, end in fetched.ends.items():
            self._log.next[tp.partition] = end
        if fetched:
            self._rebuild()

    def _rebuild(self) -> None:
        rules = self._log.rules.values() if self._log.ever_written else [self._seed]
        self._index = RuleIndex(rules)
        log.info("watchlists changed: %d rule(s) in force", len(self._index))


class RulePublisher:
    """Writes rules to the topic, each acknowledged by the broker before it returns."""

    def __init__(self, producer: AIOKafkaProducer, *, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def put(self, rule: Rule) -> None:
        sent = await self._producer.send(self._topic, rule_to_json(rule), key=_key(rule.id))
        await sent

    async def remove(self, rule_id: UUID) -> None:
        sent = await self._producer.send(self._topic, None, key=_key(rule_id))
        await sent


def _key(rule_id: UUID) -> bytes:
    return str(rule_id).encode()
