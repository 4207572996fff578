"""What the webhooks feature needs of a store, which the stores package implements: the
subscriptions, and the queue of their deliveries with the record of every attempt."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from roadwatch.errors import Conflict
from roadwatch.webhooks.retries import Outcome
from roadwatch.webhooks.subscriptions import MAX_WEBHOOKS, Delivery, Webhook


class TooManyWebhooks(Conflict):
    def __str__(self) -> str:
        return f"there are {MAX_WEBHOOKS:,} webhooks already, the most a system may hold"


@dataclass(frozen=True)
class Health:
    """How a subscription's deliveries have gone lately."""

    failing_since: datetime | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str | None
    pending: int


@dataclass(frozen=True)
class Attempt:
    """One POST of a delivery, and how it went."""

    delivery: Delivery
    attempted_at: datetime
    outcome: Outcome
    status: int | None
    latency_ms: float
    error: str | None
    # For a retry: when the next attempt is due.
    next_attempt_at: datetime | None = None


class Subscriptions(Protocol):
    async def create(self, webhook: Webhook, *, created_by: str) -> Webhook:
        """The subscription stored; TooManyWebhooks past MAX_WEBHOOKS."""
        ...

    async def page(self) -> list[tuple[Webhook, Health]]: ...

    async def get(self, webhook_id: UUID) -> tuple[Webhook, Health] | None: ...

    async def update(self, webhook_id: UUID, **changes: Any) -> bool: ...

    async def rotate_secret(self, webhook_id: UUID, secret: str, *, overlap: float) -> bool: ...

    async def delete(self, webhook_id: UUID) -> bool: ...

    async def version(self) -> tuple[int, int]:
        """Changes whenever a subscription is made, changed or removed."""
        ...

    async def subscriptions(self) -> tuple[tuple[int, int], list[Webhook]]: ...


class DeliveryQueue(Protocol):
    async def enqueue(self, deliveries: Sequence[Delivery]) -> None: ...

    async def attempts(
        self, webhook_id: UUID, *, limit: int, before: tuple[datetime, UUID] | None = None
    ) -> list[dict[str, Any]]: ...

    async def claim_due(self, rooms: dict[UUID, int], *, lease: float) -> list[Delivery]: ...

    async def seen(self, delivery_ids: Sequence[UUID]) -> set[UUID]: ...

    async def record(self, attempts: Sequence[Attempt]) -> None: ...

    async def backlog(self) -> tuple[int, datetime | None]: ...

    async def prune(self, older_than: datetime, *, chunk: int = 10_000) -> int: ...


class WebhookStore(Subscriptions, DeliveryQueue, Protocol):
    """Both, over one database."""
