"""Where deliveries that were given up go: a topic, with the reason, for an operator to see
and to replay."""

import orjson
from aiokafka import AIOKafkaProducer

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

    async def record(self, value: bytes | None, key: bytes | None, *, reason: str) -> None:
        """A record of the alerts topic that is not an alert, as it was."""
        await self._producer.send_and_wait(self._topic, value, key=key, headers=_reason(reason))


def _reason(reason: str) -> list[tuple[str, bytes]]:
    return [("roadwatch.reason", reason.encode(errors="backslashreplace")[:1000])]
