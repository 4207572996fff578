"""Watchlist rules in the users' PostgreSQL database, with a record of every change.

Every change runs under one lock, and publishes the rule to the watchlists topic before its
transaction commits: changes reach the topic in the order the database makes them, and a
change the broker did not take is not made at all.
"""

import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from roadwatch.stores.sql import MigratedDatabase
from roadwatch.watchlists.rules import MAX_RULES, Rule, rule_to_json
from roadwatch.watchlists.store import Publish, RuleNameTaken, TooManyRules, Withdraw

# One lock for every change of rules, across every API process.
WATCHLIST_LOCK = 0x77617463

metadata = sa.MetaData()
rules_table = sa.Table(
    "watchlist_rules",
    metadata,
    sa.Column("id", PG_UUID(as_uuid=True), primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("categories", ARRAY(sa.Text), nullable=False),
    sa.Column("make", sa.Text),
    sa.Column("model", sa.Text),
    sa.Column("year_from", sa.Integer),
    sa.Column("year_to", sa.Integer),
    sa.Column("created_by", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_by", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True)),
)
changes_table = sa.Table(
    "watchlist_changes",
    metadata,
    sa.Column("id", PG_UUID(as_uuid=True), primary_key=True),
    sa.Column("rule_id", PG_UUID(as_uuid=True), nullable=False),
    sa.Column("change", sa.Text, nullable=False),
    sa.Column("changed_by", sa.Text),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("rule", JSONB),
)


class PostgresWatchlistStore(MigratedDatabase):
    def __init__(
        self, url: str, *, query_timeout: float | None = None, max_rules: int = MAX_RULES
    ) -> None:
        super().__init__(url, migrations="users", query_timeout=query_timeout)
        self.max_rules = max_rules

    async def page(self, *, skip: int = 0, limit: int = 100) -> list[Rule]:
        query = (
            rules_table.select()
            .order_by(sa.func.lower(rules_table.c.name), rules_table.c.id)
            .offset(skip)
            .limit(limit)
        )
        async with self.reading() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [_rule(row) for row in rows]

    async def count(self) -> int:
        async with self.reading() as connection:
            return await _count(connection)

    async def get(self, rule_id: UUID) -> Rule | None:
        async with self.reading() as connection:
            return await _get(connection, rule_id)

    async def changes(
        self, rule_id: UUID | None = None, *, skip: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Changes of rules, deleted or not, oldest first (of one rule, with `rule_id`): which
        rule, what, by whom, when, and the rule as it stood afterwards (None once deleted)."""
        query = sa.select(
            changes_table.c.rule_id,
            changes_table.c.change,
            changes_table.c.changed_by,
            changes_table.c.changed_at,
            changes_table.c.rule,
        )
        if rule_id is not None:
            query = query.where(changes_table.c.rule_id == rule_id)
        query = (
            query.order_by(changes_table.c.changed_at, changes_table.c.id).offset(skip).limit(limit)
        )
        async with self.reading() as connection:
            return [dict(row) for row in (await connection.execute(query)).mappings()]

    async def create(self, rule: Rule, *, publish: Publish) -> Rule:
        async with self._changing() as connection:
            if await _count(connection) >= self.max_rules:
                raise TooManyRules(self.max_rules)
            await _insert(connection, rule)
            await _record(connection, rule.id, "created", rule.created_by, rule)
            await publish(rule)
        return rule

    async def update(
        self, rule_id: UUID, change: Callable[[Rule], Rule], *, publish: Publish
    ) -> Rule | None:
        """The rule after `change`, or None if there is no such rule."""
        async with self._changing() as connection:
            current = await _get(connection, rule_id)
            if current is None:
                return None
            changed = change(current)
            try:
                async with connection.begin_nested():
                    await connection.execute(
                        rules_table.update()
                        .where(rules_table.c.id == rule_id)
                        .values(**_columns(changed))
                    )
            except IntegrityError:
                raise RuleNameTaken(changed.name) from None
            await _record(connection, rule_id, "updated", changed.updated_by, changed)
            await publish(changed)
        return changed

    async def delete(self, rule_id: UUID, *, by: str, withdraw: Withdraw) -> bool:
        async with self._changing() as connection:
            deleted = await connection.execute(
                rules_table.delete().where(rules_table.c.id == rule_id)
            )
            if not deleted.rowcount:
                return False
            await _record(connection, rule_id, "deleted", by, None)
            await withdraw(rule_id)
        return True

    async def reconcile(
        self,
        seed: Rule,
        published: Callable[[], Awaitable[dict[UUID, Rule]]],
        *,
        publish: Publish,
        withdraw: Withdraw,
    ) -> int:
        """Make the topic hold exactly the database's rules; on a system that never had a
        rule, create the seed rule first. How many records it took."""
        async with self._changing() as connection:
            rules = [
                _rule(row) for row in (await connection.execute(rules_table.select())).mappings()
            ]
            never_had_rules = not (
                await connection.execute(sa.select(sa.exists().select_from(changes_table)))
            ).scalar_one()
            if never_had_rules and not rules:
                await _insert(connection, seed)
                await _record(connection, seed.id, "seeded", None, seed)
                rules = [seed]
            on_topic = await published()
            sent = 0
            for rule in rules:
                if on_topic.get(rule.id) != rule:
                    await publish(rule)
                    sent += 1
            for gone in on_topic.keys() - {rule.id for rule in rules}:
                await withdraw(gone)
                sent += 1
        return sent

    @asynccontextmanager
    async def _changing(self) -> AsyncIterator[AsyncConnection]:
        async with self.writing() as connection:
            await connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": WATCHLIST_LOCK}
            )
            yield connection


async def _count(connection: AsyncConnection) -> int:
    return int(
        (await connection.execute(sa.select(sa.func.count()).select_from(rules_table))).scalar_one()
    )


async def _get(connection: AsyncConnection, rule_id: UUID) -> Rule | None:
    query = rules_table.select().where(rules_table.c.id == rule_id)
    row = (await connection.execute(query)).mappings().first()
    return None if row is None else _rule(row)


async def _insert(connection: AsyncConnection, rule: Rule) -> None:
    try:
        async with connection.begin_nested():
            await connection.execute(rules_table.insert().values(id=rule.id, **_columns(rule)))
    except IntegrityError:
        raise RuleNameTaken(rule.name) from None


async def _record(
    connection: AsyncConnection, rule_id: UUID, change: str, by: str | None, rule: Rule | None
) -> None:
    await connection.execute(
        changes_table.insert().values(
            id=uuid.uuid4(),
            rule_id=rule_id,
            change=change,
            changed_by=by,
            changed_at=datetime.now(UTC),
            rule=None if rule is None else orjson.loads(rule_to_json(rule)),
        )
    )


def _columns(rule: Rule) -> dict[str, Any]:
    columns = dataclasses.asdict(rule)
    del columns["id"]
    columns["categories"] = list(rule.categories)
    return columns


def _rule(row: Any) -> Rule:
    fields = {field.name: row[field.name] for field in dataclasses.fields(Rule)}
    return Rule(**{**fields, "categories": tuple(fields["categories"])})
