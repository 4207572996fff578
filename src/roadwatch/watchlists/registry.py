"""Watchlists as the API changes them: the database first, the topic inside its transaction."""

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from roadwatch.errors import Busy
from roadwatch.watchlists.rules import Rule
from roadwatch.watchlists.store import RuleTopic, WatchlistStore


class RulesNotPublished(Busy):
    """The broker did not take a change of rules in time, so the change was not made."""


class Watchlists:
    def __init__(
        self,
        store: WatchlistStore,
        publisher: RuleTopic,
        *,
        published: Callable[[], Awaitable[dict[UUID, Rule]]],
        publish_timeout: float = 10.0,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._published = published
        self._publish_timeout = publish_timeout

    async def page(self, *, skip: int = 0, limit: int = 100) -> list[Rule]:
        return await self._store.page(skip=skip, limit=limit)

    async def count(self) -> int:
        return await self._store.count()

    async def get(self, rule_id: UUID) -> Rule | None:
        return await self._store.get(rule_id)

    async def changes(
        self, rule_id: UUID | None = None, *, skip: int = 0, limit: int = 100
    ) -> list[dict[str, Any]]:
        return await self._store.changes(rule_id, skip=skip, limit=limit)

    async def reconcile(self, seed: Rule) -> int:
        """Bring the topic in line with the database (see WatchlistStore.reconcile)."""
        return await self._store.reconcile(
            seed, self._published, publish=self._put, withdraw=self._remove
        )

    async def create(self, rule: Rule) -> Rule:
        return await self._store.create(rule, publish=self._put)

    async def update(self, rule_id: UUID, changes: dict[str, Any], *, by: str) -> Rule | None:
        def change(rule: Rule) -> Rule:
            # Rule checks itself: a change leaving it with no field, or its years reversed,
            # raises InvalidRule before anything is written.
            return dataclasses.replace(rule, **changes, updated_by=by, updated_at=datetime.now(UTC))

        return await self._store.update(rule_id, change, publish=self._put)

    async def delete(self, rule_id: UUID, *, by: str) -> bool:
        return await self._store.delete(rule_id, by=by, withdraw=self._remove)

    async def _put(self, rule: Rule) -> None:
        await self._published_within(self._publisher.put(rule))

    async def _remove(self, rule_id: UUID) -> None:
        await self._published_within(self._publisher.remove(rule_id))

    async def _published_within(self, sending: Awaitable[None]) -> None:
        try:
            async with asyncio.timeout(self._publish_timeout):
                await sending
        except Exception as error:
            raise RulesNotPublished(
                "the watchlists topic did not take the change, so nothing was changed",
                cause=f"{type(error).__name__}: {error}",
            ) from error
