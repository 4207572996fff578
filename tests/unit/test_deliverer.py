"""The deliverer composed, against a fake alerts topic, receiver and dead-letter topic, over
the in-memory webhook store: what is posted, recorded, held, dead-lettered and committed."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from roadwatch.alerts import encode_alert
from roadwatch.domain import Alert, RuleRef
from roadwatch.kafka.types import OffsetAndMetadata
from roadwatch.webhooks.deliverer import Deliverer
from roadwatch.webhooks.metrics import DeliveryMetrics
from roadwatch.webhooks.ports import Response
from roadwatch.webhooks.retries import Outcome, RetrySchedule
from roadwatch.webhooks.store import Attempt
from roadwatch.webhooks.subscriptions import Delivery, Webhook, delivery_id
from tests.helpers.factories import make_detection, make_webhook
from tests.helpers.records import consumer_record
from tests.helpers.waiting import eventually
from tests.helpers.webhook_fake import InMemoryWebhookStore

TOPIC = "test.alerts"
PARTITION = TopicPartition(TOPIC, 0)
RULE = RuleRef(uuid.uuid4(), "SUVs")
Records = dict[TopicPartition, list[object]]


@dataclass
class AlertsTopic:
    """Hands out each batch once, then nothing; remembers every commit."""

    batches: list[Records]
    # The end of the topic when the partition was assigned.
    end: int = 0
    commits: list[dict[int, int]] = field(default_factory=list)

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int, max_records: int | None = None
    ) -> Records:
        if not self.batches:
            await asyncio.sleep(0.01)
            return {}
        return self.batches.pop(0)

    async def commit(self, offsets: dict[TopicPartition, int | OffsetAndMetadata]) -> None:
        self.commits.append(
            {tp.partition: o if isinstance(o, int) else o.offset for tp, o in offsets.items()}
        )

    async def topics(self) -> set[str]:
        return {TOPIC}

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(partitions, self.end)

    def committed(self) -> int:
        return self.commits[-1][0] if self.commits else 0


@dataclass
class Receivers:
    """Answers each URL with its status (200 unless told); remembers each message id."""

    statuses: dict[str, int] = field(default_factory=dict)
    posts: list[tuple[str, str]] = field(default_factory=list)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        self.posts.append((url, headers["webhook-id"]))
        status = self.statuses.get(url, 200)
        return Response(status, 1.0, None if status < 300 else f"HTTP {status}")


@dataclass
class Letters:
    deliveries: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    skipped: list[tuple[bytes | None, str]] = field(default_factory=list)

    async def delivery(self, delivery: Delivery, *, url: str, reason: str) -> None:
        self.deliveries.append((delivery.id, reason))

    async def records(self, rejected: Sequence[tuple[bytes | None, bytes | None, str]]) -> None:
        self.skipped += [(value, reason) for value, _key, reason in rejected]


@dataclass
class Running:
    topic: AlertsTopic
    store: InMemoryWebhookStore
    receivers: Receivers
    letters: Letters


def alert_records(values: Iterable[bytes | None], *, first: int = 0) -> Records:
    return {
        PARTITION: [
            consumer_record(value, topic=TOPIC, offset=offset)
            for offset, value in enumerate(values, start=first)
        ]
    }


def alerts(count: int) -> list[Alert]:
    return [Alert(make_detection(), (RULE,)) for _ in range(count)]


async def subscribed(store: InMemoryWebhookStore, **fields: object) -> Webhook:
    earlier = datetime.now(UTC) - timedelta(minutes=1)
    return await store.create(make_webhook(created_at=earlier, **fields), created_by="admin")


@asynccontextmanager
async def running(topic: AlertsTopic, store: InMemoryWebhookStore) -> AsyncIterator[Running]:
    receivers, letters, stop = Receivers(), Letters(), asyncio.Event()
    deliverer = Deliverer(
        topic,
        topic=TOPIC,
        store=store,
        sender=receivers,
        dead_letters=letters,
        metrics=DeliveryMetrics(CollectorRegistry()),
        schedule=RetrySchedule(first=60.0),
        stop=stop,
        timeout=1.0,
        poll_interval=0.05,
    )
    await deliverer.listener().on_partitions_assigned({PARTITION})
    task = asyncio.create_task(deliverer.run())
    try:
        yield Running(topic, store, receivers, letters)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


async def committed_through(topic: AlertsTopic, offset: int) -> None:
    async def check() -> bool:
        return topic.committed() >= offset

    await eventually(check, within=10, every=0.02, what=f"offsets committed through {offset}")


async def test_each_alert_goes_to_each_subscription_that_wants_it_then_its_offset_commits() -> None:
    store = InMemoryWebhookStore()
    everything = await subscribed(store, url="https://a.example/hook")
    its_rule = await subscribed(store, url="https://b.example/hook", rule_ids=frozenset({RULE.id}))
    await subscribed(store, url="https://c.example/hook", rule_ids=frozenset({uuid.uuid4()}))
    sent = alerts(3)
    topic = AlertsTopic([alert_records(encode_alert(a) for a in sent)])

    async with running(topic, store) as run:
        await committed_through(topic, 3)

    expected = {
        (webhook.url, str(delivery_id(webhook.id, alert.detection.id)))
        for webhook in (everything, its_rule)
        for alert in sent
    }
    assert sorted(run.receivers.posts) == sorted(expected)
    recorded = await store.attempts(everything.id, limit=10)
    assert [a["outcome"] for a in recorded] == [Outcome.DELIVERED.value] * 3


async def test_a_failing_receiver_is_held_for_a_retry_and_holds_back_no_offset() -> None:
    store = InMemoryWebhookStore()
    await subscribed(store, url="https://down.example/hook")
    topic = AlertsTopic([alert_records(encode_alert(a) for a in alerts(2))])

    async with running(topic, store) as run:
        run.receivers.statuses["https://down.example/hook"] = 503
        await committed_through(topic, 2)

    assert len(run.receivers.posts) == 2
    assert (await store.backlog())[0] == 2
    assert run.letters.deliveries == []


async def test_a_receiver_that_refuses_for_good_is_dead_lettered() -> None:
    store = InMemoryWebhookStore()
    await subscribed(store, url="https://gone.example/hook")
    topic = AlertsTopic([alert_records(encode_alert(a) for a in alerts(1))])

    async with running(topic, store) as run:
        run.receivers.statuses["https://gone.example/hook"] = 410
        await committed_through(topic, 1)

    assert [reason for _id, reason in run.letters.deliveries] == ["HTTP 410"]
    assert (await store.backlog())[0] == 0


async def test_a_record_that_is_no_alert_is_dead_lettered_and_passed() -> None:
    store = InMemoryWebhookStore()
    await subscribed(store)
    before, after = alerts(2)
    topic = AlertsTopic([alert_records([encode_alert(before), b"{not json", encode_alert(after)])])

    async with running(topic, store) as run:
        await committed_through(topic, 3)

    assert len(run.receivers.posts) == 2
    assert [value for value, _reason in run.letters.skipped] == [b"{not json"]
    assert run.letters.skipped[0][1].startswith("not an alert")


async def test_a_replayed_alert_already_acknowledged_is_not_sent_again() -> None:
    store = InMemoryWebhookStore()
    webhook = await subscribed(store)
    acknowledged, unsent = alerts(2)
    done = Delivery(
        id=delivery_id(webhook.id, acknowledged.detection.id),
        webhook_id=webhook.id,
        body=b"{}",
        created_at=datetime.now(UTC),
        attempts=1,
    )
    await store.record([Attempt(done, datetime.now(UTC), Outcome.DELIVERED, 200, 1.0, None)])
    # Both were published before the partition was assigned: both may be replays.
    topic = AlertsTopic([alert_records([encode_alert(acknowledged), encode_alert(unsent)])], end=2)

    async with running(topic, store) as run:
        await committed_through(topic, 2)

    assert run.receivers.posts == [(webhook.url, str(delivery_id(webhook.id, unsent.detection.id)))]


@pytest.mark.parametrize("disabled", [True, False])
async def test_a_disabled_subscription_gets_nothing(disabled: bool) -> None:
    store = InMemoryWebhookStore()
    await subscribed(store, enabled=not disabled)
    topic = AlertsTopic([alert_records(encode_alert(a) for a in alerts(2))])

    async with running(topic, store) as run:
        await committed_through(topic, 2)

    assert len(run.receivers.posts) == (0 if disabled else 2)
