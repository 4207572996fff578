"""A webhook subscription, and the deliveries made to it."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import orjson

# Every subscription costs the deliverer a queue and its connections: a bound on both.
MAX_WEBHOOKS = 500
MAX_DESCRIPTION = 1000
MAX_RULE_FILTER = 100

ALERT_EVENT = "alert.created"
TEST_EVENT = "webhook.test"


@dataclass(frozen=True, slots=True)
class Webhook:
    id: UUID
    url: str
    # None: every alert; otherwise alerts that matched at least one of these rules.
    rule_ids: frozenset[UUID] | None
    description: str
    enabled: bool
    secret: str
    created_at: datetime
    # The secret before the last rotation, still signed with until this time.
    previous_secret: str | None = None
    previous_secret_until: datetime | None = None

    def wants(self, rule_ids: frozenset[UUID], at: datetime) -> bool:
        """Whether an alert that matched these rules, published at `at`, goes here."""
        if not self.enabled or at < self.created_at:
            return False
        return self.rule_ids is None or not self.rule_ids.isdisjoint(rule_ids)

    def secrets_in_force(self, now: datetime) -> list[str]:
        kept = self.previous_secret_until is not None and now < self.previous_secret_until
        return (
            [self.secret, self.previous_secret] if kept and self.previous_secret else [self.secret]
        )


@dataclass(slots=True)
class Delivery:
    """One event for one subscription, attempted until acknowledged or given up."""

    id: UUID
    webhook_id: UUID
    body: bytes
    created_at: datetime
    attempts: int = 0
    # True once a row in the database holds it: then retries are made from there.
    held: bool = False
    # When the alert was published, for a delivery made from the topic.
    published_at: datetime | None = field(default=None, compare=False)
    # Called once the delivery is acknowledged and recorded, or held: its alert's offset
    # may then be committed.
    settle: Callable[[], None] | None = field(default=None, repr=False, compare=False)


def delivery_id(webhook_id: UUID, event_id: UUID) -> UUID:
    """The message id, the same at every attempt and in every process: the receiver's key
    for discarding a delivery it has seen."""
    return uuid.uuid5(webhook_id, str(event_id))


def event_body(kind: str, event_id: UUID, at: datetime, data: object) -> bytes:
    """The body POSTed: the Standard Webhooks envelope of type, timestamp and data."""
    return orjson.dumps(
        {
            "type": kind,
            "id": str(event_id),
            "timestamp": at.isoformat(timespec="milliseconds"),
            "data": data,
        }
    )
