"""Where deliveries that were given up go: a topic, with the reason, for an operator to see
and to replay."""

import asyncio
from collections.abc import Sequence

import orjson

from roadwatch.kafka.letters import Headers, fitted
from roadwatch.kafka.types import AIOKafkaProducer
from roadwatch.webhooks.subscriptions import Delivery


class DeadLetters:
    def __init__(self, producer: AIOKafkaProducer, *, topic: str) -> None:
        self._producer = producer
        self._topic = topic

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
        await self._producer.send_and_wait(
            self._topic, value, key=str(delivery.id).encode(), headers=_reason(reason)
        )

    async def records(self, rejected: Sequence[tuple[bytes | None, bytes | None, str]]) -> None:
        """Records of the alerts topic that are not alerts, as they were (value, key and
        reason each), sent together; returns once the broker has them all."""
        letters = [
            fitted(key, value, original=[], own=_reason(reason)) for value, key, reason in rejected
        ]
        sent = [
            await self._producer.send(
                self._topic, letter.value, key=letter.key, headers=letter.headers
            )
            for letter in letters
        ]
        await asyncio.gather(*sent)


def _reason(reason: str) -> Headers:
    return [("roadwatch.reason", reason.encode(errors="backslashreplace")[:1000])]
