"""The indexer's loop against a fake consumer: commits, rebalances, and the error policy."""

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry

from roadwatch.domain import Alert, Detection
from roadwatch.indexer.batch import Records
from roadwatch.indexer.commits import CoalescingCommitter, Offsets
from roadwatch.indexer.dead_letter import Rejection
from roadwatch.indexer.error_policy import ErrorPolicy
from roadwatch.indexer.metrics import IndexerMetrics
from roadwatch.indexer.processors import MatchWatchlists, Processor
from roadwatch.indexer.runner import Indexer
from roadwatch.rejections import Reason, RecordsRefused
from roadwatch.runtime.readiness import NotReady
from roadwatch.watchlists.matching import RuleIndex
from roadwatch.watchlists.rules import seed_rule
from tests.helpers.records import consumer_record
from tests.helpers.waiting import settled

TOPIC = "test.detections"


def message(make: str = "Toyota", category: str = "SUV") -> bytes:
    return orjson.dumps({"Year": 2011, "Make": make, "Model": "Land Cruiser", "Category": category})


class FakeConsumer:
    """Hands out prepared batches of records, then nothing; remembers every commit."""

    def __init__(self, batches: Iterable[Records]) -> None:
        self.batches = list(batches)
        self.commits: list[Offsets] = []
        self.listener: ConsumerRebalanceListener | None = None
        self.partitions = {tp for batch in self.batches for tp in batch}
        self.highwaters: dict[TopicPartition, int] = {}
        self.before_read: list[Any] = []

    def subscribe(self, topics: list[str], *, listener: ConsumerRebalanceListener) -> None:
        assert topics == [TOPIC]
        self.listener = listener

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int, max_records: int | None = None
    ) -> Records:
        if self.before_read:
            await self.before_read.pop(0)()
        if not self.batches:
            await asyncio.sleep(0.01)
            return {}
        batch = self.batches.pop(0)
        for tp, records in batch.items():
            self.highwaters[tp] = max(self.highwaters.get(tp, 0), records[-1].offset + 1)
        return batch

    async def commit(self, offsets: Offsets) -> None:
        self.commits.append(dict(offsets))

    def assignment(self) -> set[TopicPartition]:
        return self.partitions

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.highwaters.get(partition)

    async def topics(self) -> set[str]:
        return {TOPIC}


class Store:
    """Stores what it is given, refusing batches that hold a make it cannot take."""

    batches_at_once = 1

    def __init__(self) -> None:
        self.stored: list[Detection] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = asyncio.Event()

    async def __call__(self, batch: Sequence[Detection]) -> Sequence[Detection]:
        self.waiting.set()
        await self.gate.wait()
        if any(d.make == "Unstorable" for d in batch):
            raise RecordsRefused("PostgreSQL 22021: invalid byte sequence")
        self.stored += batch
        return batch


class Alerts:
    batches_at_once = 1

    def __init__(self) -> None:
        self.published: list[Alert] = []

    async def __call__(self, batch: Sequence[Alert]) -> Sequence[Alert]:
        self.published += batch
        return batch


def records(partition: int, values: list[bytes | None], first: int = 0) -> Records:
    tp = TopicPartition(TOPIC, partition)
    return {
        tp: [
            consumer_record(v, topic=TOPIC, partition=partition, offset=first + i)
            for i, v in enumerate(values)
        ]
    }


def indexer_over(
    consumer: FakeConsumer, chain: list[Processor], dead: list[Rejection], stop: asyncio.Event
) -> Indexer:
    async def dead_letter(rejections: Sequence[Rejection]) -> None:
        dead.extend(rejections)

    async def ping() -> None:
        return None

    return Indexer(
        consumer,
        topic=TOPIC,
        chain=chain,
        dead_letter=dead_letter,
        metrics=IndexerMetrics(CollectorRegistry()),
        policy=ErrorPolicy(stop=stop),
        ping_store=ping,
    )


async def wait_for(condition: Any, *, within: float = 5.0) -> None:
    async with asyncio.timeout(within):
        while True:
            if condition():
                return
            await asyncio.sleep(0.005)


async def test_poison_on_every_partition_is_dead_lettered_and_the_rest_stored_and_committed() -> (
    None
):
    poison: list[bytes | None] = [
        b'{"Year": 2011, "Make": "\xff", "Model": "X", "Category": "SUV"}',
        message(make="Ford\x00"),
        message(make="Unstorable"),
        None,
    ]
    batches = [
        records(p, [message(), poison[p], message(category="Sedan")], first=10 * p)
        for p in range(4)
    ]
    consumer = FakeConsumer(batches)
    store, alerts, stop = Store(), Alerts(), asyncio.Event()
    dead: list[Rejection] = []
    indexer = indexer_over(
        consumer,
        [store, MatchWatchlists(lambda: RuleIndex([seed_rule("SUV")])), alerts],
        dead,
        stop,
    )

    running = asyncio.create_task(indexer.run(stop))
    await wait_for(
        lambda: len(consumer.commits) and _committed(consumer) == {0: 3, 1: 13, 2: 23, 3: 33}
    )
    stop.set()
    await running

    assert len(store.stored) == 8
    assert {d.make for d in store.stored} == {"Toyota"}
    assert len(alerts.published) == 4  # the SUVs stored, and nothing else
    assert {(r.partition, r.offset): why.reason for r, why in dead} == {
        (0, 1): Reason.NOT_JSON,
        (1, 11): Reason.INVALID_FIELD,
        (2, 21): Reason.STORE_REFUSED,
        (3, 31): Reason.NOT_JSON,
    }
    assert indexer.progress.lags() == dict.fromkeys(consumer.partitions, 0)


def _committed(consumer: FakeConsumer) -> dict[int, int]:
    latest: dict[int, int] = {}
    for commit in consumer.commits:
        latest.update({tp.partition: o.offset for tp, o in commit.items()})
    return latest


@dataclass
class Held:
    """An indexer whose store holds the first batch until let go."""

    consumer: FakeConsumer
    store: Store
    indexer: Indexer
    stop: asyncio.Event
    running: "asyncio.Task[None]"


async def held_in_the_store(batch: Records) -> Held:
    consumer, store, stop = FakeConsumer([batch]), Store(), asyncio.Event()
    store.gate.clear()
    indexer = indexer_over(consumer, [store], [], stop)
    running = asyncio.create_task(indexer.run(stop))
    await wait_for(store.waiting.is_set)
    return Held(consumer, store, indexer, stop, running)


async def test_a_stuck_batch_shows_in_lag_and_the_oldest_open_batch_until_committed() -> None:
    held = await held_in_the_store(records(0, [message()] * 5))
    assert held.indexer.progress.lags() == {TopicPartition(TOPIC, 0): 5}
    assert held.indexer.progress.oldest_open_seconds() > 0
    held.store.gate.set()
    await wait_for(lambda: bool(held.consumer.commits))
    held.stop.set()
    await held.running

    assert held.indexer.progress.lags() == {TopicPartition(TOPIC, 0): 0}
    assert held.indexer.progress.oldest_open_seconds() == 0


async def test_partitions_are_given_up_only_once_their_batches_are_stored_and_committed() -> None:
    held = await held_in_the_store(records(0, [message()] * 3))

    assert held.consumer.listener is not None
    revoking = asyncio.create_task(
        held.consumer.listener.on_partitions_revoked({TopicPartition(TOPIC, 0)})
    )
    await settled()
    assert not revoking.done(), "gave the partition up while its batch was unstored"
    held.store.gate.set()
    await revoking
    assert _committed(held.consumer) == {0: 3}
    held.stop.set()
    await held.running


async def test_batches_finishing_during_a_commit_are_committed_together_by_the_next() -> None:
    committed: list[dict[int, int]] = []
    release = asyncio.Event()

    async def slow_commit(offsets: Offsets) -> None:
        committed.append({tp.partition: o.offset for tp, o in offsets.items()})
        await release.wait()

    committer = CoalescingCommitter(slow_commit)
    first = asyncio.create_task(committer({TopicPartition(TOPIC, 0): OffsetAndMetadata(1, "")}))
    await wait_for(lambda: bool(committed))  # the first commit is under way
    later = [
        asyncio.create_task(committer({TopicPartition(TOPIC, p): OffsetAndMetadata(o, "")}))
        for p, o in ((0, 2), (1, 7), (0, 3))
    ]
    # Each call counts its offsets in before it waits for the lock: one turn of the loop.
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(first, *later)

    assert committed == [{0: 1}, {0: 3, 1: 7}]


async def test_offsets_of_a_failed_commit_are_committed_by_the_next_call() -> None:
    committed: list[dict[int, int]] = []
    failures = [ConnectionError("the broker is away")]

    async def flaky_commit(offsets: Offsets) -> None:
        if failures:
            raise failures.pop()
        committed.append({tp.partition: o.offset for tp, o in offsets.items()})

    committer = CoalescingCommitter(flaky_commit)
    with pytest.raises(ConnectionError):
        await committer(
            {
                TopicPartition(TOPIC, 0): OffsetAndMetadata(4, ""),
                TopicPartition(TOPIC, 1): OffsetAndMetadata(9, ""),
            }
        )
    # Partition 1 sees no batch again; its offset goes with partition 0's next.
    await committer({TopicPartition(TOPIC, 0): OffsetAndMetadata(6, "")})

    assert committed == [{0: 6, 1: 9}]


async def test_a_batch_held_by_a_step_that_never_answers_makes_the_indexer_not_ready() -> None:
    """No error to retry (a server gone silent mid-request), so only the batch's age shows
    it: past the policy's limit the indexer is not ready, and ready again once it moves."""
    consumer, store, stop = FakeConsumer([records(0, [message()] * 3)]), Store(), asyncio.Event()
    store.gate.clear()
    indexer = Indexer(
        consumer,
        topic=TOPIC,
        chain=[store],
        dead_letter=_nowhere,
        metrics=IndexerMetrics(CollectorRegistry()),
        policy=ErrorPolicy(stop=stop, stuck_after=0.2),
        ping_store=_nothing,
    )
    running = asyncio.create_task(indexer.run(stop))
    await wait_for(store.waiting.is_set)
    await indexer.check_progress()  # held, but not for long yet
    await asyncio.sleep(0.3)
    with pytest.raises(NotReady, match=r"a batch read \d+ s ago is not finished: a step is silent"):
        await indexer.check_progress()
    store.gate.set()
    await wait_for(lambda: bool(consumer.commits))
    await indexer.check_progress()
    stop.set()
    await running


async def _nowhere(rejections: Sequence[Rejection]) -> None:
    raise AssertionError(f"nothing should be dead-lettered: {rejections}")


async def _nothing() -> None:
    return None
