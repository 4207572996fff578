"""Webhook deliveries waiting for a retry, and every attempt, in the users' PostgreSQL
database.

A delivery gets a row only once its first attempt failed (or its subscription's queue was
full): one that succeeds at once leaves just the record of its attempt.
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from roadwatch.stores.sql import MigratedDatabase, rows_at_fault
from roadwatch.stores.webhook_tables import (
    INSERT_ATTEMPTS,
    INSERT_DELIVERIES,
    PENDING,
    SEEN,
    UPSERT_DELIVERIES,
    attempts_table,
    deliveries_table,
    webhooks_table,
)
from roadwatch.webhooks.retries import Outcome
from roadwatch.webhooks.store import Attempt
from roadwatch.webhooks.subscriptions import Delivery


class PostgresDeliveryQueue(MigratedDatabase):
    async def enqueue(self, deliveries: Sequence[Delivery]) -> None:
        """Hold deliveries for the next deliverer to send (a test event, or a full queue);
        one held already is left as it is."""
        if not deliveries:
            return
        now = datetime.now(UTC)
        # In the order of their keys, as every writer of deliveries locks them.
        rows = [
            {
                "id": delivery.id,
                "webhook_id": delivery.webhook_id,
                "body": delivery.body,
                "created_at": delivery.created_at,
                "attempts": delivery.attempts,
                "state": PENDING,
                "next_attempt_at": now,
                "updated_at": now,
            }
            for delivery in sorted(deliveries, key=lambda delivery: delivery.id)
        ]
        with rows_at_fault():
            async with self.writing() as connection:
                existing = await _locked_existing(connection, {d.webhook_id for d in deliveries})
                rows = [row for row in rows if row["webhook_id"] in existing]
                if rows:
                    await connection.execute(INSERT_DELIVERIES, _arrays(rows))

    async def attempts(
        self, webhook_id: UUID, *, limit: int, before: tuple[datetime, UUID] | None = None
    ) -> list[dict[str, Any]]:
        """A subscription's attempts, newest first, those older than `before` (a cursor)."""
        columns = attempts_table.c
        query = sa.select(
            columns.id,
            columns.delivery_id,
            columns.attempt,
            columns.attempted_at,
            columns.outcome,
            columns.status,
            columns.latency_ms,
            columns.error,
        ).where(columns.webhook_id == webhook_id)
        if before is not None:
            query = query.where(sa.tuple_(columns.attempted_at, columns.id) < sa.tuple_(*before))
        query = query.order_by(columns.attempted_at.desc(), columns.id.desc()).limit(limit)
        async with self.reading() as connection:
            return [dict(row) for row in (await connection.execute(query)).mappings()]

    async def claim_due(self, rooms: dict[UUID, int], *, lease: float) -> list[Delivery]:
        """Deliveries due for an attempt, at most `rooms[id]` of each subscription, taken
        for `lease` seconds: no other deliverer takes them meanwhile."""
        if not rooms:
            return []
        query = sa.text(
            """
            WITH due AS (
                SELECT d.id FROM unnest(CAST(:ids AS uuid[]), CAST(:rooms AS int[]))
                    AS r(webhook_id, room)
                CROSS JOIN LATERAL (
                    SELECT id FROM webhook_deliveries
                    WHERE webhook_id = r.webhook_id AND state = 'pending'
                        AND next_attempt_at <= now()
                    ORDER BY next_attempt_at
                    LIMIT r.room
                    FOR UPDATE SKIP LOCKED
                ) AS d
            )
            UPDATE webhook_deliveries AS w
            SET next_attempt_at = now() + make_interval(secs => :lease)
            FROM due WHERE w.id = due.id
            RETURNING w.id, w.webhook_id, w.body, w.created_at, w.attempts
            """
        )
        params = {"ids": list(rooms), "rooms": list(rooms.values()), "lease": lease}
        async with self.writing() as connection:
            rows = (await connection.execute(query, params)).all()
        return [
            Delivery(
                id=row.id,
                webhook_id=row.webhook_id,
                body=row.body,
                created_at=row.created_at,
                attempts=row.attempts,
                held=True,
            )
            for row in rows
        ]

    async def seen(self, delivery_ids: Sequence[UUID]) -> set[UUID]:
        """Of these deliveries, those acknowledged already or held for retries: a replayed
        alert's deliveries that are not to be made afresh."""
        if not delivery_ids:
            return set()
        async with self.reading() as connection:
            rows = await connection.execute(SEEN, {"ids": list(delivery_ids)})
            return {row[0] for row in rows}

    async def record(self, attempts: Sequence[Attempt]) -> None:
        """Every attempt, the deliveries' new states, and each subscription's health, in one
        transaction."""
        if not attempts:
            return
        now = datetime.now(UTC)
        with rows_at_fault():
            async with self.writing() as connection:
                await self._record(connection, attempts, now)

    async def _record(
        self, connection: AsyncConnection, attempts: Sequence[Attempt], now: datetime
    ) -> None:
        existing = await _locked_existing(connection, {a.delivery.webhook_id for a in attempts})
        attempts = [a for a in attempts if a.delivery.webhook_id in existing]
        if not attempts:
            return
        await connection.execute(INSERT_ATTEMPTS, _arrays([_attempt_row(a) for a in attempts]))
        # The latest state of each delivery: one statement may change a row only once.
        states = {
            a.delivery.id: _delivery_row(a, now)
            for a in attempts
            if a.delivery.held or a.outcome != Outcome.DELIVERED
        }
        if states:
            rows = [states[delivery_id] for delivery_id in sorted(states)]  # in key order
            await connection.execute(UPSERT_DELIVERIES, _arrays(rows))
        await _record_health(connection, attempts)

    async def backlog(self) -> tuple[int, datetime | None]:
        """How many deliveries wait for a retry, and when the oldest of them was made."""
        query = sa.select(sa.func.count(), sa.func.min(deliveries_table.c.created_at)).where(
            deliveries_table.c.state == PENDING
        )
        async with self.reading() as connection:
            count, oldest = (await connection.execute(query)).one()
        return int(count), oldest

    async def prune(self, older_than: datetime, *, chunk: int = 10_000) -> int:
        """Remove attempts, and finished deliveries, from before `older_than`; how many."""
        removed = 0
        for table, column, extra in (
            (attempts_table, attempts_table.c.attempted_at, sa.true()),
            (deliveries_table, deliveries_table.c.updated_at, deliveries_table.c.state != PENDING),
        ):
            while True:
                doomed = (
                    sa.select(table.c.id)
                    .where(column < older_than, extra)
                    .limit(chunk)
                    .scalar_subquery()
                )
                async with self.writing() as connection:
                    count = (
                        await connection.execute(table.delete().where(table.c.id.in_(doomed)))
                    ).rowcount
                removed += count
                if count < chunk:
                    break
        return removed


async def _locked_existing(connection: AsyncConnection, webhook_ids: set[UUID]) -> set[UUID]:
    """Which of these subscriptions exist, kept from removal until the transaction ends.

    A subscription removed meanwhile takes its deliveries with it: writing one of them
    would break the foreign key, fail the whole batch, and fail it again at every retry.
    """
    found = await connection.execute(
        sa.select(webhooks_table.c.id)
        .where(webhooks_table.c.id.in_(webhook_ids))
        .with_for_update(read=True, key_share=True)
    )
    return {row[0] for row in found}


async def _record_health(connection: AsyncConnection, attempts: Sequence[Attempt]) -> None:
    latest: dict[UUID, Attempt] = {}
    failed: set[UUID] = set()
    for attempt in attempts:
        latest[attempt.delivery.webhook_id] = attempt
        if attempt.outcome == Outcome.FAILED:
            failed.add(attempt.delivery.webhook_id)
    columns = webhooks_table.c
    # In one order in every deliverer: each update locks its subscription's row until the
    # transaction ends, and two deliverers updating the same rows in other orders deadlock.
    for webhook_id, attempt in sorted(latest.items()):
        if attempt.outcome == Outcome.DELIVERED and webhook_id not in failed:
            values: dict[str, Any] = {
                "failing_since": None,
                "last_success_at": attempt.attempted_at,
            }
        else:
            values = {"last_failure_at": attempt.attempted_at, "last_error": attempt.error}
            if webhook_id in failed:
                values["failing_since"] = sa.func.coalesce(
                    columns.failing_since, attempt.attempted_at
                )
        await connection.execute(
            webhooks_table.update().where(columns.id == webhook_id).values(**values)
        )


def _attempt_row(attempt: Attempt) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "delivery_id": attempt.delivery.id,
        "webhook_id": attempt.delivery.webhook_id,
        "attempt": attempt.delivery.attempts,
        "attempted_at": attempt.attempted_at,
        "outcome": attempt.outcome.value,
        "status": attempt.status,
        "latency_ms": attempt.latency_ms,
        "error": attempt.error,
    }


def _delivery_row(attempt: Attempt, now: datetime) -> dict[str, Any]:
    delivery = attempt.delivery
    return {
        "id": delivery.id,
        "webhook_id": delivery.webhook_id,
        "body": delivery.body,
        "created_at": delivery.created_at,
        "attempts": delivery.attempts,
        "state": PENDING if attempt.outcome == Outcome.RETRY else attempt.outcome.value,
        "next_attempt_at": attempt.next_attempt_at or now,
        "updated_at": now,
    }


def _arrays(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows as one list a column."""
    return {name: [row[name] for row in rows] for name in rows[0]}
