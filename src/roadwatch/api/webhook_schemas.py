"""What the webhook routes read and write."""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)

from roadwatch.text import normal_text
from roadwatch.webhooks.store import Health
from roadwatch.webhooks.subscriptions import MAX_DESCRIPTION, MAX_RULE_FILTER, Webhook
from roadwatch.webhooks.targets import MAX_URL_LENGTH

Url = Annotated[str, StringConstraints(min_length=1, max_length=MAX_URL_LENGTH)]
# Normalised, and refused with control or format characters, as a rule's description is.
Description = Annotated[
    str, BeforeValidator(normal_text), StringConstraints(max_length=MAX_DESCRIPTION)
]
Rules = Annotated[
    list[UUID],
    Field(
        max_length=MAX_RULE_FILTER,
        description="Only alerts that matched one of these watchlist rules; null: every alert",
    ),
]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url = Field(description="Where alerts are POSTed: http(s), not an internal address")
    rules: Rules | None = None
    description: Description = ""
    enabled: StrictBool = True


class WebhookChange(BaseModel):
    """Only the fields given change; `rules: null` sends every alert again."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    rules: Rules | None = None
    description: Description | None = None
    enabled: StrictBool | None = None

    @model_validator(mode="after")
    def _required_fields_not_cleared(self) -> "WebhookChange":
        for required in ("url", "description", "enabled"):
            if required in self.model_fields_set and getattr(self, required) is None:
                raise ValueError(f"{required} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        given = self.model_dump(exclude_unset=True)
        if "rules" in given:
            rules = given.pop("rules")
            given["rule_ids"] = None if rules is None else frozenset(rules)
        return given


class HealthOut(BaseModel):
    status: str = Field(
        description="healthy, failing (a delivery was given up since the last "
        "success), or new (nothing attempted yet)"
    )
    failing_since: datetime | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_error: str | None
    pending: int = Field(description="Deliveries waiting for a retry")

    @classmethod
    def of(cls, health: Health) -> "HealthOut":
        if health.failing_since is not None:
            status = "failing"
        elif health.last_success_at is None and health.last_failure_at is None:
            status = "new"
        else:
            status = "healthy"
        return cls(status=status, **health.__dict__)


class WebhookOut(BaseModel):
    id: UUID
    url: str
    rules: list[UUID] | None
    description: str
    enabled: bool
    created_at: datetime
    previous_secret_until: datetime | None = Field(
        description="Until then, deliveries carry a second signature, with the previous secret"
    )
    health: HealthOut

    @classmethod
    def of(cls, webhook: Webhook, health: Health) -> "WebhookOut":
        return cls(
            id=webhook.id,
            url=webhook.url,
            rules=None if webhook.rule_ids is None else sorted(webhook.rule_ids),
            description=webhook.description,
            enabled=webhook.enabled,
            created_at=webhook.created_at,
            previous_secret_until=webhook.previous_secret_until,
            health=HealthOut.of(health),
        )


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret: shown this once, keep it")


class SecretOut(BaseModel):
    secret: str = Field(description="The new signing secret: shown this once")
    previous_secret_until: datetime = Field(
        description="Until then, the old secret signs too, so receivers can switch over"
    )


class TestQueued(BaseModel):
    delivery_id: UUID = Field(description="The test event's webhook-id")


class AttemptOut(BaseModel):
    id: UUID
    delivery_id: UUID = Field(description="The webhook-id header: the same at every attempt")
    attempt: int
    attempted_at: datetime
    outcome: str = Field(description="delivered, retry, or failed (given up, dead-lettered)")
    status: int | None = Field(description="The receiver's HTTP status; null if none came")
    latency_ms: float
    error: str | None


class AttemptPage(BaseModel):
    items: list[AttemptOut]
    next: str | None = Field(description="Pass as `cursor` for older attempts; null at the end")
