"""Alerts: what is published for a suspicious detection, and the seam that publishes it."""

import asyncio
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol
from uuid import UUID

import orjson
from aiokafka import AIOKafkaProducer

from roadwatch.domain import Detection


def encode_alert(detection: Detection) -> bytes:
    return orjson.dumps(
        {
            "id": str(detection.id),
            "timestamp": detection.timestamp.isoformat(timespec="milliseconds"),
            "year": detection.year,
            "make": detection.make,
            "model": detection.model,
            "category": detection.category,
        }
    )


def decode_alert(value: bytes) -> dict[str, object]:
    alert = orjson.loads(value)
    if not isinstance(alert, dict):
        raise ValueError("an alert is a JSON object")
    UUID(alert["id"])
    datetime.fromisoformat(alert["timestamp"])
    return alert


class AlertPublisher(Protocol):
    async def publish(self, suspicious: Sequence[Detection]) -> None:
        """Return once the broker has acknowledged every alert; raise if any was refused."""


class KafkaAlertPublisher:
    """Alerts to a Kafka topic, keyed by detection id, so a re-sent alert is recognisable."""

    def __init__(self, producer: AIOKafkaProducer, *, topic: str) -> None:
        self._producer = producer
        self._topic = topic

    async def publish(self, suspicious: Sequence[Detection]) -> None:
        deliveries = [
            await self._producer.send(
                self._topic, encode_alert(detection), key=str(detection.id).encode()
            )
            for detection in suspicious
        ]
        await asyncio.gather(*deliveries)
