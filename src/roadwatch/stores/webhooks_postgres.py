"""Webhook subscriptions, their pending deliveries and every attempt, in the users' database.

A delivery gets a row only once its first attempt failed (or its subscription's queue was
full): one that succeeds at once leaves just the record of its attempt.
"""

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from roadwatch.errors import RoadwatchError
from roadwatch.stores.sql import MigratedDatabase, rows_at_fault
from roadwatch.webhooks.retries import Outcome
from roadwatch.webhooks.subscriptions import MAX_WEBHOOKS, Delivery, Webhook

# One lock for every change of subscriptions, so that the bound on their number holds.
WEBHOOK_LOCK = 0x77656268

metadata = sa.MetaData()
webhooks_table = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", PG_UUID(as_uuid=True), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("rule_ids", ARRAY(PG_UUID(as_uuid=True))),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("previous_secret", sa.Text),
    sa.Column("previous_secret_until", sa.DateTime(timezone=True)),
    sa.Column("created_by", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("failing_since", sa.DateTime(timezone=True)),
    sa.Column("last_success_at", sa.DateTime(timezone=True)),
    sa.Column("last_failure_at", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text),
)
deliveries_table = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", PG_UUID(as_uuid=True), primary_key=True),
    sa.Column("webhook_id", PG_UUID(as_uuid=True), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
attempts_table = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", PG_UUID(as_uuid=True), primary_key=True),
    sa.Column("delivery_id", PG_UUID(as_uuid=True), nullable=False),
    sa.Column("webhook_id", PG_UUID(as_uuid=True), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("status", sa.Integer),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("error", sa.Text),
)
# Batches go as one array a column, unnested by the server: one statement of a few
# parameters whatever the number of rows, and nothing for SQLAlchemy to compile per row.
DELIVERY_COLUMNS = {
    "id": "uuid",
    "webhook_id": "uuid",
    "body": "bytea",
    "created_at": "timestamptz",
    "attempts": "int",
    "state": "text",
    "next_attempt_at": "timestamptz",
    "updated_at": "timestamptz",
}
ATTEMPT_COLUMNS = {
    "id": "uuid",
    "delivery_id": "uuid",
    "webhook_id": "uuid",
    "attempt": "int",
    "attempted_at": "timestamptz",
    "outcome": "text",
    "status": "int",
    "latency_ms": "float8",
    "error": "text",
}


def _unnest_insert(table: str, columns: dict[str, str]) -> str:
    names = ", ".join(columns)
    arrays = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in columns.items())
    # The table and column names are roadwatch's own, never input.
    return f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})"  # noqa: S608


INSERT_DELIVERIES = sa.text(
    _unnest_insert("webhook_deliveries", DELIVERY_COLUMNS) + " ON CONFLICT (id) DO NOTHING"
)
UPSERT_DELIVERIES = sa.text(
    _unnest_insert("webhook_deliveries", DELIVERY_COLUMNS)
    + " ON CONFLICT (id) DO UPDATE SET attempts = EXCLUDED.attempts, state = EXCLUDED.state,"
    " next_attempt_at = EXCLUDED.next_attempt_at, updated_at = EXCLUDED.updated_at"
)
INSERT_ATTEMPTS = sa.text(_unnest_insert("webhook_attempts", ATTEMPT_COLUMNS))
SEEN = sa.text(
    "SELECT delivery_id FROM webhook_attempts"
    " WHERE delivery_id = ANY(CAST(:ids AS uuid[])) AND outcome = 'delivered'"
    " UNION SELECT id FROM webhook_deliveries WHERE id = ANY(CAST(:ids AS uuid[]))"
)
NEXT_VERSION = sa.text("nextval('webhook_versions')")
PENDING = "pending"


class TooManyWebhooks(RoadwatchError):
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


class PostgresWebhookStore(MigratedDatabase):
    def __init__(
        self, url: str, *, query_timeout: float | None = None, pool_size: int = 10
    ) -> None:
        super().__init__(url, migrations="users", query_timeout=query_timeout, pool_size=pool_size)

    # What the API does.

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

    async def enqueue(self, deliveries: Sequence[Delivery]) -> None:
        """Hold deliveries for the next deliverer to send (a test event, or a full queue);
        one held already is left as it is."""
        if not deliveries:
            return
        now = datetime.now(UTC)
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
            for delivery in deliveries
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

    # What the deliverer does.

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
            await connection.execute(UPSERT_DELIVERIES, _arrays(list(states.values())))
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
    for webhook_id, attempt in latest.items():
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
