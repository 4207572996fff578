"""What the deliverer works through, besides its store: the alerts topic it reads, the HTTP
client it posts with, and where it dead-letters. Kafka's and aiohttp's clients fit them, and
so do the fakes of unit tests."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from roadwatch.kafka.reader import Fetching
from roadwatch.kafka.types import OffsetAndMetadata, TopicPartition
from roadwatch.webhooks.subscriptions import Delivery


@dataclass(frozen=True)
class Response:
    """How a POST went: the status (None: no answer), and why it failed, if it did."""

    status: int | None
    latency_ms: float
    error: str | None = None
    retry_after: float | None = None

    @property
    def acknowledged(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Poster(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        """Every failure is a Response too, never an exception."""
        ...


class DeadLetterSink(Protocol):
    async def delivery(self, delivery: Delivery, *, url: str, reason: str) -> None: ...

    async def records(self, rejected: Sequence[tuple[bytes | None, bytes | None, str]]) -> None:
        """Records of the alerts topic that are not alerts: (value, key, reason) each."""
        ...


class AlertsConsumer(Fetching, Protocol):
    async def commit(self, offsets: dict[TopicPartition, int | OffsetAndMetadata]) -> None: ...

    async def topics(self) -> Any: ...

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...
