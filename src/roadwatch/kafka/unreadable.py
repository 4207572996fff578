"""A record that could not be read as Kafka's protocol defines one: where it is, what of it
could be read, and why."""

from dataclasses import dataclass

from roadwatch.rejections import Reason

# Where an Unreadable stands until the fetcher places it: a batch knows no topic or partition.
NOWHERE = ("", -1)


@dataclass(frozen=True, slots=True)
class Unreadable:
    """It has the fields of aiokafka's ConsumerRecord that a dead letter copies, so it is sent
    to a dead-letter topic as a record is. For a batch that could not be read at all, it
    stands at the batch's last offset, and `detail` names the offsets it covers."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    # Names as far as they are text: each byte that is not UTF-8 is escaped (\xff).
    headers: tuple[tuple[str, bytes | None], ...]
    reason: Reason
    detail: str

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}: {self.reason} ({self.detail})"
