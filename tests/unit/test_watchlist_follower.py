"""The watchlist follower against a fake consumer: a broken reading keeps the rules in force,
makes the indexer's error policy report it, and clears once the reading works again."""

import asyncio
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition

from roadwatch.indexer.error_policy import ErrorPolicy
from roadwatch.watchlists.rules import seed_rule
from roadwatch.watchlists.topic import RuleFollower
from tests.helpers.waiting import eventually

TOPIC = "watchlists"


class FlakyConsumer:
    """An empty topic, whose reads fail while `broken` is set."""

    def __init__(self, broken: asyncio.Event) -> None:
        self._broken = broken
        self._partition = TopicPartition(TOPIC, 0)

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    def assignment(self) -> set[TopicPartition]:
        return {self._partition}

    def seek(self, _partition: TopicPartition, _offset: int) -> None: ...
    async def seek_to_beginning(self, _partition: TopicPartition) -> None: ...

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict.fromkeys(partitions, 0)

    async def position(self, _partition: TopicPartition) -> int:
        return 0

    async def getmany(
        self, *_partitions: Any, timeout_ms: int, max_records: int | None = None
    ) -> dict[Any, Any]:
        await asyncio.sleep(0.01)
        if self._broken.is_set():
            raise ConnectionError("the broker is away")
        return {}


async def test_a_broken_reading_keeps_the_rules_and_is_reported_until_it_reads_again() -> None:
    broken = asyncio.Event()
    policy = ErrorPolicy(stop=asyncio.Event(), stuck_after=0.1)
    seed = seed_rule("SUV")
    follower = RuleFollower(
        lambda: cast(AIOKafkaConsumer, FlakyConsumer(broken)),
        topic=TOPIC,
        seed=seed,
        retry=policy.retry,
    )
    await follower.start()
    try:
        assert policy.problem() is None
        broken.set()

        async def reported() -> bool:
            return "following the watchlists" in (policy.problem() or "")

        await eventually(reported, within=10, what="the failure reported", every=0.02)
        assert set(follower.current.rules) == {seed.id}

        broken.clear()

        async def cleared() -> bool:
            return policy.problem() is None

        await eventually(cleared, within=15, what="the failure cleared", every=0.02)
    finally:
        await follower.stop()
