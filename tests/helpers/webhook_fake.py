"""An in-memory WebhookStore, held to the PostgreSQL store's contract by
tests/contract/test_webhook_store.py, for unit tests of what is built on it."""

import dataclasses
import itertools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from roadwatch.webhooks.retries import Outcome
from roadwatch.webhooks.store import Attempt, Health, TooManyWebhooks
from roadwatch.webhooks.subscriptions import MAX_WEBHOOKS, Delivery, Webhook

PENDING = "pending"


@dataclasses.dataclass
class _Held:
    delivery: Delivery
    state: str
    next_attempt_at: datetime
    updated_at: datetime


@dataclasses.dataclass
class _Subscription:
    webhook: Webhook
    version: int
    failing_since: datetime | None = None
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_error: str | None = None


class InMemoryWebhookStore:
    def __init__(self) -> None:
        self._subscriptions: dict[UUID, _Subscription] = {}
        self._held: dict[UUID, _Held] = {}
        self._attempts: list[dict[str, Any]] = []
        self._versions = itertools.count(1)

    # Subscriptions

    async def create(self, webhook: Webhook, *, created_by: str) -> Webhook:
        if len(self._subscriptions) >= MAX_WEBHOOKS:
            raise TooManyWebhooks
        self._subscriptions[webhook.id] = _Subscription(webhook, next(self._versions))
        return webhook

    async def page(self) -> list[tuple[Webhook, Health]]:
        ordered = sorted(
            self._subscriptions.values(), key=lambda s: (s.webhook.created_at, s.webhook.id)
        )
        return [(s.webhook, self._health(s)) for s in ordered]

    async def get(self, webhook_id: UUID) -> tuple[Webhook, Health] | None:
        found = self._subscriptions.get(webhook_id)
        return None if found is None else (found.webhook, self._health(found))

    async def update(self, webhook_id: UUID, **changes: Any) -> bool:
        found = self._subscriptions.get(webhook_id)
        if found is None:
            return False
        if changes.get("rule_ids") is not None:
            changes["rule_ids"] = frozenset(changes["rule_ids"])
        found.webhook = dataclasses.replace(found.webhook, **changes)
        found.version = next(self._versions)
        return True

    async def rotate_secret(self, webhook_id: UUID, secret: str, *, overlap: float) -> bool:
        found = self._subscriptions.get(webhook_id)
        if found is None:
            return False
        found.webhook = dataclasses.replace(
            found.webhook,
            previous_secret=found.webhook.secret,
            previous_secret_until=datetime.now(UTC) + timedelta(seconds=overlap),
            secret=secret,
        )
        found.version = next(self._versions)
        return True

    async def delete(self, webhook_id: UUID) -> bool:
        if self._subscriptions.pop(webhook_id, None) is None:
            return False
        self._held = {k: h for k, h in self._held.items() if h.delivery.webhook_id != webhook_id}
        self._attempts = [a for a in self._attempts if a["webhook_id"] != webhook_id]
        return True

    async def version(self) -> tuple[int, int]:
        return len(self._subscriptions), max(
            (s.version for s in self._subscriptions.values()), default=0
        )

    async def subscriptions(self) -> tuple[tuple[int, int], list[Webhook]]:
        return await self.version(), [s.webhook for s in self._subscriptions.values()]

    # The delivery queue

    async def enqueue(self, deliveries: Sequence[Delivery]) -> None:
        now = datetime.now(UTC)
        for delivery in deliveries:
            if delivery.webhook_id in self._subscriptions and delivery.id not in self._held:
                self._held[delivery.id] = _Held(_copy(delivery), PENDING, now, now)

    async def attempts(
        self, webhook_id: UUID, *, limit: int, before: tuple[datetime, UUID] | None = None
    ) -> list[dict[str, Any]]:
        found = [
            {k: v for k, v in a.items() if k != "webhook_id"}
            for a in self._attempts
            if a["webhook_id"] == webhook_id
            and (before is None or (a["attempted_at"], a["id"]) < before)
        ]
        found.sort(key=lambda a: (a["attempted_at"], a["id"]), reverse=True)
        return found[:limit]

    async def claim_due(self, rooms: dict[UUID, int], *, lease: float) -> list[Delivery]:
        now = datetime.now(UTC)
        claimed: list[Delivery] = []
        for webhook_id, room in rooms.items():
            due = sorted(
                (
                    h
                    for h in self._held.values()
                    if h.delivery.webhook_id == webhook_id
                    and h.state == PENDING
                    and h.next_attempt_at <= now
                ),
                key=lambda h: h.next_attempt_at,
            )[:room]
            for held in due:
                held.next_attempt_at = now + timedelta(seconds=lease)
                claimed.append(dataclasses.replace(_copy(held.delivery), held=True))
        return claimed

    async def seen(self, delivery_ids: Sequence[UUID]) -> set[UUID]:
        wanted = set(delivery_ids)
        delivered = {
            a["delivery_id"] for a in self._attempts if a["outcome"] == Outcome.DELIVERED.value
        }
        return wanted & (delivered | set(self._held))

    async def record(self, attempts: Sequence[Attempt]) -> None:
        now = datetime.now(UTC)
        attempts = [a for a in attempts if a.delivery.webhook_id in self._subscriptions]
        for attempt in attempts:
            delivery = attempt.delivery
            self._attempts.append(
                {
                    "id": uuid.uuid4(),
                    "delivery_id": delivery.id,
                    "webhook_id": delivery.webhook_id,
                    "attempt": delivery.attempts,
                    "attempted_at": attempt.attempted_at,
                    "outcome": attempt.outcome.value,
                    "status": attempt.status,
                    "latency_ms": attempt.latency_ms,
                    "error": attempt.error,
                }
            )
            if delivery.held or attempt.outcome != Outcome.DELIVERED:
                state = PENDING if attempt.outcome == Outcome.RETRY else attempt.outcome.value
                self._held[delivery.id] = _Held(
                    _copy(delivery), state, attempt.next_attempt_at or now, now
                )
        self._record_health(attempts)

    async def backlog(self) -> tuple[int, datetime | None]:
        pending = [h.delivery.created_at for h in self._held.values() if h.state == PENDING]
        return len(pending), min(pending, default=None)

    async def prune(self, older_than: datetime, *, chunk: int = 10_000) -> int:
        kept = [a for a in self._attempts if a["attempted_at"] >= older_than]
        finished = [
            k for k, h in self._held.items() if h.state != PENDING and h.updated_at < older_than
        ]
        removed = len(self._attempts) - len(kept) + len(finished)
        self._attempts = kept
        for key in finished:
            del self._held[key]
        return removed

    def _health(self, subscription: _Subscription) -> Health:
        pending = sum(
            h.delivery.webhook_id == subscription.webhook.id and h.state == PENDING
            for h in self._held.values()
        )
        return Health(
            failing_since=subscription.failing_since,
            last_success_at=subscription.last_success_at,
            last_failure_at=subscription.last_failure_at,
            last_error=subscription.last_error,
            pending=pending,
        )

    def _record_health(self, attempts: Sequence[Attempt]) -> None:
        latest = {a.delivery.webhook_id: a for a in attempts}
        failed = {a.delivery.webhook_id for a in attempts if a.outcome == Outcome.FAILED}
        for webhook_id, attempt in latest.items():
            subscription = self._subscriptions[webhook_id]
            if attempt.outcome == Outcome.DELIVERED and webhook_id not in failed:
                subscription.failing_since = None
                subscription.last_success_at = attempt.attempted_at
                continue
            subscription.last_failure_at = attempt.attempted_at
            subscription.last_error = attempt.error
            if webhook_id in failed and subscription.failing_since is None:
                subscription.failing_since = attempt.attempted_at


def _copy(delivery: Delivery) -> Delivery:
    """What a row holds of a delivery: nothing of the process that made it."""
    return Delivery(
        id=delivery.id,
        webhook_id=delivery.webhook_id,
        body=delivery.body,
        created_at=delivery.created_at,
        attempts=delivery.attempts,
    )
