"""Exactly-once alerts against a real broker: a batch's alerts and its offsets commit in one
transaction a partition; a crash between publishing and committing leaves nothing a reader
of committed records sees, and a zombie indexer is fenced by the partition's next holder,
while the holder whose transaction the broker timed out makes it again."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
import pytest
from aiokafka.errors import KafkaConnectionError

from roadwatch.alerts import ALERT_BATCH_BYTES
from roadwatch.bootstrap.clients import kafka_producer
from roadwatch.bootstrap.indexer import indexer_producer
from roadwatch.domain import Alert, RuleRef, Source
from roadwatch.indexer.dead_letter import DeadLetter
from roadwatch.indexer.pending import PendingAlerts, PendingLetters
from roadwatch.indexer.transactions import FencedButHeld, PartitionTransactions
from roadwatch.kafka.letters import Draft
from roadwatch.kafka.ownership import still_holds
from roadwatch.kafka.producer import Producer
from roadwatch.kafka.types import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    MessageSizeTooLargeError,
    OffsetAndMetadata,
    TopicPartition,
)
from roadwatch.settings import Settings
from tests.helpers.factories import make_detection
from tests.helpers.kafka import committed_of_group, no_member_of_the_group, read_topic
from tests.helpers.servers import Servers, create_topic, unique
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.kafka

RULE = RuleRef(uuid.uuid4(), "SUVs")
# The broker's default transaction.abort.timed.out.transaction.cleanup.interval.ms, in s.
TIMED_OUT_SWEEP = 10


@dataclass
class Topics:
    settings: Settings
    detections: TopicPartition
    alerts: str
    group: str

    def holder(
        self,
        *,
        holds: Callable[[TopicPartition], Awaitable[bool]] = no_member_of_the_group,
        make_producer: Callable[[str], AIOKafkaProducer] | None = None,
        letters: PendingLetters | None = None,
    ) -> tuple[PartitionTransactions, PendingAlerts]:
        """An indexer's transactions over the partition, not yet assigned it."""
        pending = PendingAlerts()
        return (
            PartitionTransactions(
                make_producer or partial(indexer_producer, self.settings),
                alerts_topic=self.alerts,
                group=self.group,
                pending=pending,
                holds=holds,
                committed=committed_of_group(self.settings.kafka_broker_url, self.group),
                letters=letters,
            ),
            pending,
        )

    def letters_at(self, *offsets: int) -> list[DeadLetter]:
        return [
            DeadLetter(self.detections, offset, Draft(None, f"bad {offset}".encode(), [], []))
            for offset in offsets
        ]

    def alerts_at(self, *offsets: int) -> list[Alert]:
        tp = self.detections
        return [
            Alert(make_detection(source=Source(tp.topic, tp.partition, offset)), (RULE,))
            for offset in offsets
        ]


@pytest.fixture
async def topics(servers: Servers) -> Topics:
    detections = await create_topic(servers.kafka, partitions=1)
    return Topics(
        servers.settings,
        TopicPartition(detections, 0),
        await create_topic(servers.kafka, partitions=1),
        unique("indexer"),
    )


async def _alert_ids(servers: Servers, topic: str, *, committed: bool = True) -> list[str]:
    records = await read_topic(
        servers.kafka, topic, expected=1, within=5, settle=1, committed=committed
    )
    return [orjson.loads(r.value)["id"] for r in records if r.value is not None]


async def _committed(servers: Servers, topics: Topics) -> int | None:
    return await committed_of_group(servers.kafka, topics.group)(topics.detections)


async def test_alerts_and_offsets_commit_together(servers: Servers, topics: Topics) -> None:
    transactions, pending = topics.holder()
    await transactions.assigned({topics.detections})
    try:
        first, second, later = topics.alerts_at(0, 3, 7)
        await pending.publish([first, second, later])
        await transactions.commit({topics.detections: OffsetAndMetadata(5, "")})
        assert await _alert_ids(servers, topics.alerts) == [
            str(first.detection.id),
            str(second.detection.id),
        ]
        assert await _committed(servers, topics) == 5
        # The alert past the offset waits for its own batch's commit.
        assert pending.before(topics.detections, 8) == [later]
    finally:
        await transactions.close()


async def test_a_crash_before_the_commit_hides_its_alerts_and_the_replay_publishes_once(
    servers: Servers, topics: Topics
) -> None:
    (alert,) = topics.alerts_at(0)
    crashed, _ = topics.holder()
    # The crashed indexer's transaction: the alert written, the commit never made.
    producer = kafka_producer(
        topics.settings, linger_ms=0, transactional_id=crashed.transactional_id(topics.detections)
    )
    await producer.start()
    await producer.begin_transaction()
    await (await producer.send(topics.alerts, orjson.dumps({"id": str(alert.detection.id)})))

    # Its successor takes the partition over, replays the batch, and commits.
    successor, pending = topics.holder()
    await successor.assigned({topics.detections})
    try:
        await pending.publish([alert])
        await successor.commit({topics.detections: OffsetAndMetadata(1, "")})
    finally:
        await successor.close()
    with_aborted = await _alert_ids(servers, topics.alerts, committed=False)
    assert with_aborted.count(str(alert.detection.id)) == 2
    assert await _alert_ids(servers, topics.alerts) == [str(alert.detection.id)]
    assert await _committed(servers, topics) == 1
    await producer.stop()


async def test_a_zombie_holder_is_fenced_and_commits_nothing(
    servers: Servers, topics: Topics
) -> None:
    zombie, zombie_pending = topics.holder()
    successor, pending = topics.holder()
    await zombie.assigned({topics.detections})
    # A rebalance the zombie missed (a long pause): the partition's next holder starts.
    await successor.assigned({topics.detections})
    try:
        (alert,) = topics.alerts_at(0)
        await zombie_pending.publish([alert])
        await zombie.commit({topics.detections: OffsetAndMetadata(9, "")})
        await pending.publish([alert])
        await successor.commit({topics.detections: OffsetAndMetadata(1, "")})
        assert await _alert_ids(servers, topics.alerts) == [str(alert.detection.id)]
        assert await _committed(servers, topics) == 1
        # The zombie let the partition go: a later commit of it is no longer its own.
        assert zombie_pending.before(topics.detections, 10) == []
    finally:
        await zombie.close()
        await successor.close()


async def test_a_topic_taking_only_small_batches_gets_them_and_every_alert_once(
    servers: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    # An alerts topic made by an operator, taking batches of 64 KiB at most: a partition's
    # 500 alerts (about 145 KB) go in one batch of up to 256 KiB at first.
    small = 64 * 1024
    detections = await create_topic(servers.kafka, partitions=1)
    topics = Topics(
        servers.settings,
        TopicPartition(detections, 0),
        await create_topic(servers.kafka, partitions=1, config={"max.message.bytes": str(small)}),
        unique("indexer"),
    )
    transactions, pending = topics.holder()
    await transactions.assigned({topics.detections})
    try:
        alerts = topics.alerts_at(*range(500))
        await pending.publish(alerts)
        offsets = {topics.detections: OffsetAndMetadata(500, "")}
        with pytest.raises(MessageSizeTooLargeError):
            await transactions.commit(offsets)
        assert transactions.batch_size.limit == small
        assert f"refused a batch of alerts of up to {ALERT_BATCH_BYTES} bytes" in caplog.text
        # As the indexer's policy does: the commit again, in batches the topic takes.
        await transactions.commit(offsets)
        assert await _alert_ids(servers, topics.alerts) == [str(a.detection.id) for a in alerts]
        assert await _committed(servers, topics) == 500
    finally:
        await transactions.close()


class Once:
    """True the first time it is asked, then never: only a test's first producer misbehaves,
    and the retry's producer, made anew, does not."""

    def __init__(self) -> None:
        self._asked = False

    def __call__(self) -> bool:
        first, self._asked = not self._asked, True
        return first


class PausedProducer(Producer):
    """A real producer whose first transaction pauses before its offsets, past the
    transaction's timeout (1 s) and the broker's next sweep of timed-out transactions."""

    def __init__(self, *, first: Once, **options: Any) -> None:
        super().__init__(transaction_timeout_ms=1000, **options)
        self._first = first

    async def send_offsets_to_transaction(self, offsets: Any, group_id: str) -> None:
        if self._first():
            await asyncio.sleep(TIMED_OUT_SWEEP + 3)
        await super().send_offsets_to_transaction(offsets, group_id)


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_a_transaction_the_broker_timed_out_is_made_again_by_the_partitions_holder(
    servers: Servers, topics: Topics
) -> None:
    # The broker fences a producer whose transaction outlived its timeout (an outage, a
    # long pause) as it fences a zombie's: taken for a zombie, the partition's alerts and
    # offsets stayed uncommitted until the next rebalance.
    member = AIOKafkaConsumer(
        topics.detections.topic,
        bootstrap_servers=servers.kafka,
        group_id=topics.group,
        enable_auto_commit=False,
    )
    await member.start()
    try:
        await eventually(
            lambda: _joined(member, topics.detections), within=30, what="the group joined"
        )
        await _fails_then_commits_each_alert_once(
            servers,
            topics,
            FencedButHeld,
            producer=partial(PausedProducer, first=Once(), bootstrap_servers=servers.kafka),
            holds=partial(still_holds, member),
        )
    finally:
        await member.stop()


async def _joined(member: AIOKafkaConsumer, partition: TopicPartition) -> bool:
    await member.getmany(timeout_ms=100)
    return partition in member.assignment()


class AnswerLostProducer(Producer):
    """A real producer whose first transaction commits, and whose caller then hears of a
    failure all the same: the broker's answer lost, or the sender dead after sending it."""

    def __init__(self, *, first: Once, **options: Any) -> None:
        super().__init__(**options)
        self._first = first

    async def commit_transaction(self) -> None:
        await super().commit_transaction()
        if self._first():
            raise KafkaConnectionError("the answer to EndTxn was lost")


async def test_a_commit_heard_as_failed_that_committed_publishes_its_alerts_once(
    servers: Servers, topics: Topics
) -> None:
    await _fails_then_commits_each_alert_once(
        servers,
        topics,
        KafkaConnectionError,
        producer=partial(AnswerLostProducer, first=Once(), bootstrap_servers=servers.kafka),
    )


async def _fails_then_commits_each_alert_once(
    servers: Servers,
    topics: Topics,
    failure: type[Exception],
    *,
    producer: Callable[..., AIOKafkaProducer],
    holds: Callable[[TopicPartition], Awaitable[bool]] = no_member_of_the_group,
) -> None:
    """A holder of the partition whose producers `producer` makes (given a transactional
    id), with a batch of three alerts: the first commit raises `failure`, and the retry (as
    the indexer's policy makes it) publishes each alert once and commits the offset."""
    transactions, pending = topics.holder(
        holds=holds,
        make_producer=lambda transactional_id: producer(transactional_id=transactional_id),
    )
    await transactions.assigned({topics.detections})
    try:
        alerts = topics.alerts_at(0, 1, 2)
        await pending.publish(alerts)
        offsets = {topics.detections: OffsetAndMetadata(3, "")}
        with pytest.raises(failure):
            await transactions.commit(offsets)
        await transactions.commit(offsets)
        assert await _alert_ids(servers, topics.alerts) == [str(a.detection.id) for a in alerts]
        assert await _committed(servers, topics) == 3
    finally:
        await transactions.close()


class StartsLateProducer(Producer):
    """A real producer whose first start fails, as with the broker away at assignment."""

    def __init__(self, *, first: Once, **options: Any) -> None:
        super().__init__(**options)
        self._first = first

    async def start(self) -> None:
        if self._first():
            raise KafkaConnectionError("the broker was away at assignment")
        await super().start()


async def test_a_batch_the_previous_holder_committed_after_the_takeover_is_published_once(
    servers: Servers, topics: Topics
) -> None:
    # The consumer fetches its starting offset on its own, before the producer that fences
    # the previous holder has started: here it could not start at all. The previous holder's
    # transaction then commits, and the partition's new holder replays that batch.
    dead_letters = await create_topic(servers.kafka, partitions=1)
    previous_letters, letters = PendingLetters(dead_letters), PendingLetters(dead_letters)
    previous, previous_pending = topics.holder(letters=previous_letters)
    first = Once()
    successor, pending = topics.holder(
        make_producer=lambda transactional_id: StartsLateProducer(
            first=first, bootstrap_servers=servers.kafka, transactional_id=transactional_id
        ),
        letters=letters,
    )
    await previous.assigned({topics.detections})
    await successor.assigned({topics.detections})
    try:
        replayed = topics.alerts_at(0, 2)
        await previous_pending.publish(replayed)
        await previous_letters(topics.letters_at(1))
        await previous.commit({topics.detections: OffsetAndMetadata(3, "")})

        (later,) = topics.alerts_at(4)
        await pending.publish([*replayed, later])
        await letters(topics.letters_at(1, 3))
        # A batch wholly below what the group has committed publishes nothing, and the
        # group's offset does not move back.
        await successor.commit({topics.detections: OffsetAndMetadata(2, "")})
        assert await _committed(servers, topics) == 3
        await successor.commit({topics.detections: OffsetAndMetadata(5, "")})
        assert await _alert_ids(servers, topics.alerts) == [
            str(a.detection.id) for a in [*replayed, later]
        ]
        sent = await read_topic(servers.kafka, dead_letters, expected=2, within=5, settle=1)
        assert [r.value for r in sent] == [b"bad 1", b"bad 3"]
        assert await _committed(servers, topics) == 5
    finally:
        await previous.close()
        await successor.close()
