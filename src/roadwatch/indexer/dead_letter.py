"""What becomes of a message that is not a valid detection: the dead-letter topic."""

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence

from roadwatch.indexer.metrics import IndexerMetrics
from roadwatch.kafka.letters import Headers, Letter, fitted
from roadwatch.kafka.types import AIOKafkaProducer, Record
from roadwatch.kafka.unreadable import Unreadable
from roadwatch.rejections import RejectedMessage

log = logging.getLogger(__name__)

# A record, or what the reader could read of one, with why it is set aside.
Rejection = tuple[Record | Unreadable, RejectedMessage]
OWN_PREFIX = "roadwatch."
# Where incoming headers named like roadwatch's own are kept, so that none can pass for them.
ORIGINAL_PREFIX = "original."


def dead_letter(record: Record | Unreadable, rejection: RejectedMessage) -> Letter:
    """The record's value, key and headers, its reason and source in headers of roadwatch's."""
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
    return fitted(record.key, record.value, original=original, own=own)


class DeadLetterTopic:
    """Sends rejected messages, original bytes and key, to a topic, their reason in headers."""

    def __init__(self, producer: AIOKafkaProducer, *, topic: str, metrics: IndexerMetrics) -> None:
        self._producer = producer
        self._topic = topic
        self._metrics = metrics
        self.totals: Counter[str] = Counter()

    async def __call__(self, rejections: Sequence[Rejection]) -> None:
        letters = [dead_letter(record, rejection) for record, rejection in rejections]
        deliveries = [
            await self._producer.send(
                self._topic, letter.value, key=letter.key, headers=letter.headers
            )
            for letter in letters
        ]
        await asyncio.gather(*deliveries)
        in_batch = Counter(rejection.reason.value for _record, rejection in rejections)
        self.totals.update(in_batch)
        for reason, count in sorted(in_batch.items()):
            self._metrics.rejected.labels(reason).inc(count)
            example = next(r for _rec, r in rejections if r.reason == reason)
            log.warning(
                "dead-lettered %d message(s) as %s (%d so far), e.g. %s",
                count,
                reason,
                self.totals[reason],
                example.detail,
                extra={"reason": reason, "count": count, "total": self.totals[reason]},
            )
