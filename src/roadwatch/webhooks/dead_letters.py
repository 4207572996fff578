"""Where deliveries that were given up go: a topic, with the reason, for an operator to see
and to replay."""

from collections.abc import Sequence

import orjson

from roadwatch.kafka.letters import Draft, Headers, letter_size, send_letters
from roadwatch.kafka.types import AIOKafkaProducer
from roadwatch.webhooks.subscriptions import Delivery


class DeadLetters:
    def __init__(self, producer: AIOKafkaProducer, *, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._size = letter_size()

    async def delivery(self, delivery: Delivery, *, url: str, reason: str) -> None:
        value = orjson.dumps(
            {
                "delivery_id": str(delivery.id),
                "webhook_id": str(delivery.webhook_id),
                "url": url,
                "attempts": delivery.attempts,
                "reason": reason,
                "body": orjson.Fragment(delivery.body),
            }
        )
        draft = Draft(str(delivery.id).encode(), value, [], _reason(reason))
        await send_letters(self._producer, self._topic, [draft], self._size)

    async def records(self, rejected: Sequence[tuple[bytes | None, bytes | None, str]]) -> None:
        """Records of the alerts topic that are not alerts, as they were (value, key and
        reason each), sent together; returns once the broker has them all."""
        drafts = [Draft(key, value, [], _reason(reason)) for value, key, reason in rejected]
        await send_letters(self._producer, self._topic, drafts, self._size)


def _reason(reason: str) -> Headers:
    return [("roadwatch.reason", reason.encode(errors="backslashreplace")[:1000])]
