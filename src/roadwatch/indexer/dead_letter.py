"""What becomes of a message that is not a valid detection: the dead-letter topic."""

import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from roadwatch.indexer.metrics import IndexerMetrics
from roadwatch.kafka.letters import Draft, Headers, letter_size, send_letters
from roadwatch.kafka.types import AIOKafkaProducer, Record, TopicPartition
from roadwatch.kafka.unreadable import Unreadable
from roadwatch.logs import Throttled
from roadwatch.rejections import RejectedMessage

log = logging.getLogger(__name__)

# A record, or what the reader could read of one, with why it is set aside.
Rejection = tuple[Record | Unreadable, RejectedMessage]
OWN_PREFIX = "roadwatch."
# Where incoming headers named like roadwatch's own are kept, so that none can pass for them.
ORIGINAL_PREFIX = "original."


def dead_letter(record: Record | Unreadable, rejection: RejectedMessage) -> Draft:
    """The draft of the record's letter: its value, key and headers, and its reason and source
    in headers of roadwatch's."""
    original = [
        (ORIGINAL_PREFIX + name if name.lower().startswith(OWN_PREFIX) else name, value)
        for name, value in record.headers
    ]
    own: Headers = [
        ("roadwatch.reason", rejection.reason.value.encode()),
        ("roadwatch.detail", rejection.detail.encode(errors="backslashreplace")[:1000]),
        ("roadwatch.source.topic", record.topic.encode()),
        ("roadwatch.source.partition", str(record.partition).encode()),
        ("roadwatch.source.offset", str(record.offset).encode()),
    ]
    return Draft(record.key, record.value, original, own)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A letter, with the place of the record it carries."""

    partition: TopicPartition
    offset: int
    draft: Draft


class LetterSender:
    """Dead letters sent as they come, outside any transaction: a batch replayed after a
    crash sends its letters again."""

    def __init__(self, producer: AIOKafkaProducer, *, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._size = letter_size()

    async def __call__(self, letters: Sequence[DeadLetter]) -> None:
        await send_letters(self._producer, self._topic, [d.draft for d in letters], self._size)


class DeadLetterTopic:
    """Rejected messages as dead letters, original bytes and key, their reason in headers,
    handed to `send`: sent at once, or kept for their batch's transaction."""

    def __init__(
        self,
        send: Callable[[Sequence[DeadLetter]], Awaitable[None]],
        *,
        metrics: IndexerMetrics,
    ) -> None:
        self._send = send
        self._metrics = metrics
        self.totals: Counter[str] = Counter()
        self._log = Throttled(log)

    async def __call__(self, rejections: Sequence[Rejection]) -> None:
        await self._send(
            [
                DeadLetter(
                    TopicPartition(record.topic, record.partition),
                    record.offset,
                    dead_letter(record, rejection),
                )
                for record, rejection in rejections
            ]
        )
        in_batch = Counter(rejection.reason.value for _record, rejection in rejections)
        self.totals.update(in_batch)
        for reason, count in sorted(in_batch.items()):
            self._metrics.rejected.labels(reason).inc(count)
            example = next(r for _rec, r in rejections if r.reason == reason)
            self._log.warning(
                reason,
                "dead-lettered %d message(s) as %s (%d so far), e.g. %s",
                count,
                reason,
                self.totals[reason],
                example.detail,
                extra={"reason": reason, "count": count, "total": self.totals[reason]},
            )
