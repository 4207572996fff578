"""A record that could not be read as Kafka's protocol defines one: where it is, what of it
could be read, and why."""

from roadwatch.kafka.record import RecordFields
from roadwatch.rejections import Reason

# Where an Unreadable stands until the fetcher places it: a batch knows no topic or partition.
NOWHERE = ("", -1)


class Unreadable(RecordFields, frozen=True, gc=False):
    """It has a Record's fields, so it is sent to a dead-letter topic as a record is; its
    header names as far as they are text (each byte that is not UTF-8 is escaped: \\xff).
    For a batch that could not be read at all, it stands at the batch's last offset, and
    `detail` names the offsets it covers."""

    reason: Reason
    detail: str

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}: {self.reason} ({self.detail})"
