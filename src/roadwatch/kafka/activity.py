"""What the broker says of how things go: how far each consumer group is behind, how many
records a topic took lately, and why records were dead-lettered. Read without joining any
group, so that asking changes nothing."""

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from roadwatch.kafka.reader import Reader, consumer
from roadwatch.kafka.record import Record
from roadwatch.kafka.types import AIOKafkaAdminClient, KafkaError, TopicPartition
from roadwatch.kafka.unreadable import Unreadable
from roadwatch.text import printable

REASON_HEADER = "roadwatch.reason"
# At most this many dead letters are read per topic to count their reasons: past it, the
# count says "at least".
MOST_LETTERS_READ = 20_000
# Reading them takes at most this long: past it, too, the count says "at least".
READ_WITHIN = 5.0
# A reason longer than this is cut: free-text reasons (a receiver's answer) stay a handful.
REASON_LENGTH = 60


@dataclass
class Letters:
    reasons: Counter[str] = field(default_factory=Counter)
    # True when more were dead-lettered than were read.
    more: bool = False


class Activity:
    """A consumer outside any group and an admin client, over one broker connection each."""

    def __init__(self, options: dict[str, Any]) -> None:
        self._consumer = consumer(**options, enable_auto_commit=False, group_id=None)
        self._admin = AIOKafkaAdminClient(**options)
        self._known: dict[str, list[TopicPartition]] = {}

    async def __aenter__(self) -> "Activity":
        # A client that failed to start is stopped all the same: it holds connections.
        try:
            await self._consumer.start()
            await self._admin.start()
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await asyncio.gather(self._consumer.stop(), self._admin.close(), return_exceptions=True)

    async def end_total(self, topic: str) -> int:
        """The sum of the topic's end offsets: it grows by one a record published."""
        ends = await self._consumer.end_offsets(await self._partitions(topic))
        return sum(ends.values())

    async def lag(self, group: str, topics: Iterable[str]) -> int | None:
        """How many records of `topics` the group has not committed; None if it never
        committed any."""
        partitions = [tp for topic in topics for tp in await self._partitions(topic)]
        committed = await self._admin.list_consumer_group_offsets(group, partitions=partitions)
        positions = {tp: meta.offset for tp, meta in committed.items() if meta.offset >= 0}
        if not positions:
            return None
        ends = await self._consumer.end_offsets(partitions)
        behind: int = sum(max(ends[tp] - positions.get(tp, 0), 0) for tp in partitions)
        return behind

    async def records_since(self, topic: str, seconds: float) -> Letters:
        """The records the topic took in the last `seconds` and committed, counted under
        "records" (read: offsets count transactions' markers too)."""
        found = Letters()

        def count(_record: object) -> None:
            found.reasons["records"] += 1

        found.more = await self._read_since(topic, seconds, count)
        return found

    async def letters_since(self, topic: str, seconds: float) -> Letters:
        """The reasons of the records dead-lettered on `topic` in the last `seconds`."""
        letters = Letters()

        def count(record: "Record | Unreadable") -> None:
            reason = "unreadable" if isinstance(record, Unreadable) else _reason(record.headers)
            letters.reasons[reason] += 1

        letters.more = await self._read_since(topic, seconds, count)
        return letters

    async def _read_since(
        self, topic: str, seconds: float, take: "Callable[[Record | Unreadable], None]"
    ) -> bool:
        """Hand `take` each record of the last `seconds`, readable or not; whether some were
        left unread (past MOST_LETTERS_READ, or READ_WITHIN)."""
        firsts = await self._firsts_since(topic, seconds)
        ends = await self._consumer.end_offsets(list(firsts))
        todo = {tp: ends[tp] for tp, first in firsts.items() if first is not None}
        if not todo:
            return False
        self._consumer.assign(list(todo))
        for tp in todo:
            first = firsts[tp]
            assert first is not None
            self._consumer.seek(tp, first)

        async def unreadable(records: Sequence[Unreadable]) -> None:
            for record in records:
                take(record)

        reader = Reader(self._consumer, on_unreadable=unreadable)
        read = 0
        deadline = time.monotonic() + READ_WITHIN
        while todo and read < MOST_LETTERS_READ and time.monotonic() < deadline:
            fetched = await reader.read(*todo, timeout_ms=500, max_records=1000)
            for records in fetched.records.values():
                read += len(records)
                for record in records:
                    take(record)
            for tp in list(todo):
                # The position passes transactions' markers, which no record ends at.
                if await self._consumer.position(tp) >= todo[tp]:
                    del todo[tp]
        return bool(todo)

    async def _firsts_since(self, topic: str, seconds: float) -> dict[TopicPartition, int | None]:
        since = int((time.time() - seconds) * 1000)
        partitions = await self._partitions(topic)
        found = await self._consumer.offsets_for_times(dict.fromkeys(partitions, since))
        return {tp: None if at is None else at.offset for tp, at in found.items()}

    async def _partitions(self, topic: str) -> list[TopicPartition]:
        if topic not in self._known:
            (described,) = await self._admin.describe_topics([topic])
            numbers = sorted(p["partition"] for p in described["partitions"])
            if described["error_code"] or not numbers:
                raise KafkaError(f"no topic {topic} (error {described['error_code']})")
            self._known[topic] = [TopicPartition(topic, n) for n in numbers]
        return self._known[topic]


def _reason(headers: Iterable[tuple[str, bytes | None]]) -> str:
    """The kind of reason a letter gives ("HTTP 503", "not an alert"), not its detail; as
    text that is safe to print, whatever bytes the header held."""
    for key, value in headers:
        if key == REASON_HEADER and value is not None:
            kind = value.decode(errors="replace").split(":", 1)[0].strip()
            return printable(kind, limit=REASON_LENGTH) or "unstated"
    return "unstated"
