"""Webhook subscriptions in the users' PostgreSQL database: what the API changes, and what
the deliverer follows."""

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from roadwatch.stores.sql import MigratedDatabase
from roadwatch.stores.webhook_tables import (
    NEXT_VERSION,
    PENDING,
    WEBHOOK_LOCK,
    deliveries_table,
    webhooks_table,
)
from roadwatch.webhooks.store import Health, TooManyWebhooks
from roadwatch.webhooks.subscriptions import MAX_WEBHOOKS, Webhook


class PostgresSubscriptions(MigratedDatabase):
    async def create(self, webhook: Webhook, *, created_by: str) -> Webhook:
        async with self.writing() as connection:
            await connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": WEBHOOK_LOCK}
            )
            count = (
                await connection.execute(sa.select(sa.func.count()).select_from(webhooks_table))
            ).scalar_one()
            if count >= MAX_WEBHOOKS:
                raise TooManyWebhooks
            await connection.execute(
                webhooks_table.insert().values(
                    **_columns(webhook), created_by=created_by, version=NEXT_VERSION
                )
            )
        return webhook

    async def page(self) -> list[tuple[Webhook, Health]]:
        """Every subscription (there are at most MAX_WEBHOOKS), oldest first."""
        async with self.reading() as connection:
            rows = (await connection.execute(_with_health())).mappings().all()
        return [(_webhook(row), _health(row)) for row in rows]

    async def get(self, webhook_id: UUID) -> tuple[Webhook, Health] | None:
        query = _with_health().where(webhooks_table.c.id == webhook_id)
        async with self.reading() as connection:
            row = (await connection.execute(query)).mappings().first()
        return None if row is None else (_webhook(row), _health(row))

    async def update(self, webhook_id: UUID, **changes: Any) -> bool:
        if "rule_ids" in changes and changes["rule_ids"] is not None:
            changes["rule_ids"] = sorted(changes["rule_ids"])
        query = (
            webhooks_table.update()
            .where(webhooks_table.c.id == webhook_id)
            .values(**changes, version=NEXT_VERSION)
        )
        async with self.writing() as connection:
            return bool((await connection.execute(query)).rowcount)

    async def rotate_secret(self, webhook_id: UUID, secret: str, *, overlap: float) -> bool:
        """Sign with `secret` from now on, and with the one it replaces for `overlap` s more."""
        query = (
            webhooks_table.update()
            .where(webhooks_table.c.id == webhook_id)
            .values(
                previous_secret=webhooks_table.c.secret,
                previous_secret_until=datetime.now(UTC) + timedelta(seconds=overlap),
                secret=secret,
                version=NEXT_VERSION,
            )
        )
        async with self.writing() as connection:
            return bool((await connection.execute(query)).rowcount)

    async def delete(self, webhook_id: UUID) -> bool:
        async with self.writing() as connection:
            deleted = await connection.execute(
                webhooks_table.delete().where(webhooks_table.c.id == webhook_id)
            )
        return bool(deleted.rowcount)

    async def version(self) -> tuple[int, int]:
        """Changes whenever a subscription is made, changed or removed."""
        query = sa.select(
            sa.func.count(), sa.func.coalesce(sa.func.max(webhooks_table.c.version), 0)
        )
        async with self.reading() as connection:
            count, latest = (await connection.execute(query)).one()
        return int(count), int(latest)

    async def subscriptions(self) -> tuple[tuple[int, int], list[Webhook]]:
        query = webhooks_table.select()
        async with self.reading() as connection:
            rows = (await connection.execute(query)).mappings().all()
        webhooks = [_webhook(row) for row in rows]
        latest = max((int(row["version"]) for row in rows), default=0)
        return (len(rows), latest), webhooks


def _with_health() -> sa.Select[Any]:
    pending = (
        sa.select(sa.func.count())
        .where(
            deliveries_table.c.webhook_id == webhooks_table.c.id,
            deliveries_table.c.state == PENDING,
        )
        .scalar_subquery()
        .label("pending")
    )
    return sa.select(webhooks_table, pending).order_by(
        webhooks_table.c.created_at, webhooks_table.c.id
    )


def _columns(webhook: Webhook) -> dict[str, Any]:
    columns = dataclasses.asdict(webhook)
    columns["rule_ids"] = None if webhook.rule_ids is None else sorted(webhook.rule_ids)
    return columns


def _webhook(row: Any) -> Webhook:
    rule_ids = row["rule_ids"]
    return Webhook(
        id=row["id"],
        url=row["url"],
        rule_ids=None if rule_ids is None else frozenset(UUID(str(r)) for r in rule_ids),
        description=row["description"],
        enabled=row["enabled"],
        secret=row["secret"],
        created_at=row["created_at"],
        previous_secret=row["previous_secret"],
        previous_secret_until=row["previous_secret_until"],
    )


def _health(row: Any) -> Health:
    return Health(
        failing_since=row["failing_since"],
        last_success_at=row["last_success_at"],
        last_failure_at=row["last_failure_at"],
        last_error=row["last_error"],
        pending=int(row["pending"]),
    )
