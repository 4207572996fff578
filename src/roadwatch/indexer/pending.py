"""What waits for its batch's transaction, by partition of detections and offset: the
chain's alerts, and the batch's dead letters. Each commit takes those below its offset, and
a partition given up takes its own with it."""

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

from roadwatch.domain import Alert
from roadwatch.indexer.dead_letter import DeadLetter
from roadwatch.kafka.letters import letter_size
from roadwatch.kafka.types import TopicPartition

T = TypeVar("T")


class _Pending(Generic[T]):
    def __init__(self, place: Callable[[T], tuple[TopicPartition, int]]) -> None:
        self._place = place
        self._held: dict[TopicPartition, list[tuple[int, T]]] = defaultdict(list)

    def add(self, items: Iterable[T]) -> None:
        for item in items:
            partition, offset = self._place(item)
            self._held[partition].append((offset, item))

    def before(self, partition: TopicPartition, offset: int) -> list[T]:
        return [item for at, item in self._held.get(partition, ()) if at < offset]

    def settled(self, partition: TopicPartition, offset: int) -> None:
        """Those below `offset` are committed (or are another indexer's to commit now)."""
        kept = [(at, item) for at, item in self._held.get(partition, ()) if at >= offset]
        if kept:
            self._held[partition] = kept
        else:
            self._held.pop(partition, None)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        for partition in partitions:
            self._held.pop(partition, None)


def _alert_place(alert: Alert) -> tuple[TopicPartition, int]:
    source = alert.source
    return TopicPartition(source.topic, source.partition), source.offset


class PendingAlerts(_Pending[Alert]):
    """The alerts of batches stored but not yet committed: the chain's last step hands
    them here."""

    def __init__(self) -> None:
        super().__init__(_alert_place)

    async def publish(self, alerts: Sequence[Alert]) -> None:
        self.add(alerts)


class PendingLetters(_Pending[DeadLetter]):
    """The dead letters of batches not yet committed, for `topic`, and how large the topic
    takes them: the indexer's dead-lettering hands them here."""

    def __init__(self, topic: str) -> None:
        super().__init__(lambda letter: (letter.partition, letter.offset))
        self.topic = topic
        self.size = letter_size()

    async def __call__(self, letters: Sequence[DeadLetter]) -> None:
        self.add(letters)
