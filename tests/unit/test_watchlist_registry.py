"""The API's watchlist changes, over the in-memory store (held to the real store's contract
by tests/contract/test_watchlist_store.py): a change the topic does not take is not made."""

import asyncio
import uuid
from uuid import UUID

import pytest

from roadwatch.watchlists.registry import RulesNotPublished, Watchlists
from roadwatch.watchlists.rules import Rule
from tests.helpers.watchlist_fake import InMemoryWatchlistStore


class Publisher:
    def __init__(self, *, hangs: bool = False) -> None:
        self.hangs = hangs
        self.put_ids: list[UUID] = []

    async def put(self, rule: Rule) -> None:
        if self.hangs:
            await asyncio.sleep(3600)
        self.put_ids.append(rule.id)

    async def remove(self, rule_id: UUID) -> None:
        if self.hangs:
            await asyncio.sleep(3600)


async def nothing_published() -> dict[UUID, Rule]:
    return {}


def registry(store: InMemoryWatchlistStore, publisher: Publisher) -> Watchlists:
    return Watchlists(store, publisher, published=nothing_published, publish_timeout=0.05)


async def test_a_change_the_topic_does_not_take_in_time_is_not_made() -> None:
    store = InMemoryWatchlistStore()
    watchlists = registry(store, Publisher(hangs=True))
    with pytest.raises(RulesNotPublished, match="nothing was changed"):
        await watchlists.create(Rule(id=uuid.uuid4(), name="jeeps", make="Jeep"))
    assert await watchlists.count() == 0
    assert await store.changes() == []


async def test_an_update_is_stamped_with_who_and_when_and_published() -> None:
    store, publisher = InMemoryWatchlistStore(), Publisher()
    watchlists = registry(store, publisher)
    made = await watchlists.create(Rule(id=uuid.uuid4(), name="jeeps", make="Jeep"))
    changed = await watchlists.update(made.id, {"make": "Kia"}, by="bob")
    assert changed is not None
    assert (changed.make, changed.updated_by) == ("Kia", "bob")
    assert changed.updated_at is not None
    assert publisher.put_ids == [made.id, made.id]
    assert await watchlists.get(made.id) == changed
