"""Alerts: what is published for a suspicious detection, and the seam that publishes it."""

import asyncio
from collections.abc import Sequence
from typing import Protocol

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
