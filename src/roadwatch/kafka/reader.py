"""The one way a roadwatch process reads a topic: the indexer its detections, the API's feed
its alerts, the rule follower its watchlists, the deliverer its alerts.

Every consumer is made by `consumer()`, which puts the tolerant fetch in place first, so no
bytes a broker holds make `getmany` raise. A `Reader` then splits what was fetched: the
records go back to the process, and every Unreadable goes to the topic's error policy, its
`on_unreadable` (dead letters where the topic has them; otherwise a log line and a metric),
before the records fetched with it are returned. `Fetched.ends` covers both, so the process
moves past an unreadable record as past any other.
"""

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition

from roadwatch.kafka.record import Record
from roadwatch.kafka.tolerant_fetch import install
from roadwatch.kafka.unreadable import Unreadable
from roadwatch.logs import Throttled
from roadwatch.rejections import Reason

log = logging.getLogger(__name__)

OnUnreadable = Callable[[Sequence[Unreadable]], Awaitable[None]]


def consumer(*topics: str, **options: Any) -> AIOKafkaConsumer:
    """An aiokafka consumer that reads through the tolerant fetch; roadwatch makes no other.

    It reads committed records only: the alerts a transaction published appear once it
    commits (indexer/transactions.py), and never if it is aborted. Its records are
    roadwatch's Records, their key and value bytes: it takes no deserializer.
    """
    if {"key_deserializer", "value_deserializer"} & options.keys():
        raise TypeError("roadwatch's consumers read bytes, and apply no deserializer")
    install()
    return AIOKafkaConsumer(*topics, **{"isolation_level": "read_committed", **options})


class Fetching(Protocol):
    """What a Reader asks of its consumer (aiokafka's, or a fake in unit tests)."""

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int, max_records: int | None = None
    ) -> dict[TopicPartition, list[Any]]: ...


@dataclass(frozen=True, slots=True)
class Fetched:
    records: dict[TopicPartition, list[Record]]
    # Per partition read, the offset after the last record read, unreadable or not.
    ends: dict[TopicPartition, int]

    def __bool__(self) -> bool:
        return bool(self.ends)


class Reader:
    def __init__(self, consumer: Fetching, *, on_unreadable: OnUnreadable) -> None:
        self._consumer = consumer
        self._on_unreadable = on_unreadable

    async def read(
        self, *partitions: TopicPartition, timeout_ms: int, max_records: int | None = None
    ) -> Fetched:
        """What `getmany` returns, its unreadable records already handed to the policy."""
        fetched = await self._consumer.getmany(
            *partitions, timeout_ms=timeout_ms, max_records=max_records
        )
        records: dict[TopicPartition, list[Record]] = {}
        ends: dict[TopicPartition, int] = {}
        unreadable: list[Unreadable] = []
        for tp, items in fetched.items():
            if not items:
                continue
            ends[tp] = items[-1].offset + 1
            # Looked for without a Python call a record: nearly every fetch holds none.
            if Unreadable not in map(type, items):
                records[tp] = items
                continue
            unreadable += [item for item in items if isinstance(item, Unreadable)]
            readable = [item for item in items if not isinstance(item, Unreadable)]
            if readable:
                records[tp] = readable
        if unreadable:
            await self._on_unreadable(unreadable)
        return Fetched(records, ends)


class SkipUnreadable:
    """The policy for a topic without dead letters: each unreadable record is counted and
    passed over, and each read that held some is logged, one line a reason however many
    there are."""

    def __init__(self, *, counted: Callable[[Reason], None] = lambda _reason: None) -> None:
        self._counted = counted
        self._log = Throttled(log)

    async def __call__(self, unreadable: Sequence[Unreadable]) -> None:
        by_reason: dict[Reason, list[Unreadable]] = {}
        for record in unreadable:
            self._counted(record.reason)
            by_reason.setdefault(record.reason, []).append(record)
        for reason, records in by_reason.items():
            first = records[0]
            self._log.warning(
                reason,
                "skipped %d unreadable record(s) as %s, e.g. %s[%d]@%d (%s)",
                len(records),
                reason,
                first.topic,
                first.partition,
                first.offset,
                first.detail,
                extra={"reason": str(reason), "count": len(records)},
            )
