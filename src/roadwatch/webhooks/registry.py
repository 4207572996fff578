"""What administrators do with webhook subscriptions: the checks, then the store."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from roadwatch.errors import Invalid
from roadwatch.webhooks.signing import new_secret
from roadwatch.webhooks.store import Health, WebhookStore
from roadwatch.webhooks.subscriptions import TEST_EVENT, Delivery, Webhook, delivery_id, event_body
from roadwatch.webhooks.targets import RefusedTarget, TargetPolicy, resolve_permitted

RESOLVE_WITHIN = 5.0

RuleExists = Callable[[UUID], Awaitable[bool]]


class UnknownRules(Invalid):
    def __init__(self, missing: Iterable[UUID]) -> None:
        super().__init__("no watchlist rule with the id " + ", ".join(sorted(map(str, missing))))


class WebhookRegistry:
    def __init__(
        self,
        store: WebhookStore,
        *,
        policy: TargetPolicy,
        rule_exists: RuleExists,
        secret_overlap: float,
    ) -> None:
        self._store = store
        self._policy = policy
        self._rule_exists = rule_exists
        self.secret_overlap = secret_overlap

    async def page(self) -> list[tuple[Webhook, Health]]:
        return await self._store.page()

    async def get(self, webhook_id: UUID) -> tuple[Webhook, Health] | None:
        return await self._store.get(webhook_id)

    async def delete(self, webhook_id: UUID) -> bool:
        return await self._store.delete(webhook_id)

    async def attempts(
        self, webhook_id: UUID, *, limit: int, before: tuple[datetime, UUID] | None = None
    ) -> list[dict[str, Any]]:
        return await self._store.attempts(webhook_id, limit=limit, before=before)

    async def create(
        self,
        *,
        url: str,
        rule_ids: frozenset[UUID] | None,
        description: str,
        enabled: bool,
        by: str,
    ) -> Webhook:
        """The new subscription, with its secret; RefusedTarget or UnknownRules if unfit."""
        await self._check_target(url)
        await self._check_rules(rule_ids)
        webhook = Webhook(
            id=uuid.uuid4(),
            url=url,
            rule_ids=rule_ids,
            description=description,
            enabled=enabled,
            secret=new_secret(),
            created_at=datetime.now(UTC),
        )
        return await self._store.create(webhook, created_by=by)

    async def update(self, webhook_id: UUID, changes: dict[str, Any]) -> bool:
        if "url" in changes:
            await self._check_target(changes["url"])
        if changes.get("rule_ids") is not None:
            await self._check_rules(changes["rule_ids"])
        return await self._store.update(webhook_id, **changes)

    async def rotate_secret(self, webhook_id: UUID) -> str | None:
        secret = new_secret()
        rotated = await self._store.rotate_secret(webhook_id, secret, overlap=self.secret_overlap)
        return secret if rotated else None

    async def send_test(self, webhook_id: UUID) -> UUID | None:
        """Queue a test event for the next deliverer; its delivery id, or None if no such
        subscription."""
        if await self._store.get(webhook_id) is None:
            return None
        now = datetime.now(UTC)
        event_id = uuid.uuid4()
        body = event_body(TEST_EVENT, event_id, now, {"message": "a test event from roadwatch"})
        delivery = Delivery(
            id=delivery_id(webhook_id, event_id), webhook_id=webhook_id, body=body, created_at=now
        )
        await self._store.enqueue([delivery])
        return delivery.id

    async def _check_target(self, url: str) -> None:
        host, port = self._policy.check_url(url)
        try:
            async with asyncio.timeout(RESOLVE_WITHIN):
                await resolve_permitted(self._policy, host, port)
        except TimeoutError:
            raise RefusedTarget(f"{host} did not resolve within {RESOLVE_WITHIN:g} s") from None

    async def _check_rules(self, rule_ids: frozenset[UUID] | None) -> None:
        if rule_ids is None:
            return
        missing = [rule_id for rule_id in rule_ids if not await self._rule_exists(rule_id)]
        if missing:
            raise UnknownRules(missing)
