"""What the watchlists rely on from their store, against PostgreSQL and the in-memory fake
that unit tests use: if the fake drifts from the real store, this fails."""

import dataclasses
import uuid
from collections.abc import AsyncIterator
from uuid import UUID

import pytest

from roadwatch.stores.watchlists_postgres import PostgresWatchlistStore
from roadwatch.watchlists.rules import Rule
from roadwatch.watchlists.store import RuleNameTaken, TooManyRules, WatchlistStore
from tests.contract.backends import BOTH, under_contract
from tests.helpers.servers import Servers
from tests.helpers.watchlist_fake import InMemoryWatchlistStore

MAX_RULES = 3


@pytest.fixture(params=BOTH)
async def rules(request: pytest.FixtureRequest, servers: Servers) -> AsyncIterator[WatchlistStore]:
    async with under_contract(
        request.param,
        servers,
        real=lambda url: PostgresWatchlistStore(url, max_rules=MAX_RULES),
        fake=lambda: InMemoryWatchlistStore(max_rules=MAX_RULES),
    ) as store:
        yield store


class Topic:
    """What a store's changes published, in order; refuses while `down`."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, UUID]] = []
        self.down = False

    async def put(self, rule: Rule) -> None:
        if self.down:
            raise ConnectionError("the broker is away")
        self.sent.append(("put", rule.id))

    async def remove(self, rule_id: UUID) -> None:
        if self.down:
            raise ConnectionError("the broker is away")
        self.sent.append(("remove", rule_id))


def rule(name: str, **fields: object) -> Rule:
    return Rule(id=uuid.uuid4(), name=name, make="Jeep", created_by="ann", **fields)  # type: ignore[arg-type]


async def test_rules_are_listed_by_name_whatever_its_case(rules: WatchlistStore) -> None:
    topic = Topic()
    for name in ("b-trucks", "A-jeeps", "c-vans"):
        await rules.create(rule(name), publish=topic.put)
    assert [r.name for r in await rules.page()] == ["A-jeeps", "b-trucks", "c-vans"]
    assert [r.name for r in await rules.page(skip=1, limit=1)] == ["b-trucks"]
    assert await rules.count() == 3


async def test_a_name_is_taken_whatever_its_case_and_the_cap_holds(rules: WatchlistStore) -> None:
    topic = Topic()
    first = await rules.create(rule("jeeps"), publish=topic.put)
    with pytest.raises(RuleNameTaken):
        await rules.create(rule("JEEPS"), publish=topic.put)
    other = await rules.create(rule("vans"), publish=topic.put)
    with pytest.raises(RuleNameTaken):
        await rules.update(
            other.id, lambda r: dataclasses.replace(r, name="Jeeps"), publish=topic.put
        )
    await rules.create(rule("trucks"), publish=topic.put)
    with pytest.raises(TooManyRules):
        await rules.create(rule("cars"), publish=topic.put)
    assert topic.sent == [("put", first.id), ("put", other.id), ("put", topic.sent[2][1])]


async def test_a_change_the_topic_refuses_is_not_made(rules: WatchlistStore) -> None:
    topic = Topic()
    kept = await rules.create(rule("jeeps"), publish=topic.put)
    topic.down = True
    with pytest.raises(ConnectionError):
        await rules.create(rule("vans"), publish=topic.put)
    with pytest.raises(ConnectionError):
        await rules.update(kept.id, lambda r: dataclasses.replace(r, make="Kia"), publish=topic.put)
    with pytest.raises(ConnectionError):
        await rules.delete(kept.id, by="ann", withdraw=topic.remove)
    assert await rules.page() == [kept]
    assert [c["change"] for c in await rules.changes()] == ["created"]


async def test_every_change_is_recorded_with_who_and_the_rule_afterwards(
    rules: WatchlistStore,
) -> None:
    topic = Topic()
    made = await rules.create(rule("jeeps"), publish=topic.put)
    changed = await rules.update(
        made.id, lambda r: dataclasses.replace(r, make="Kia", updated_by="bob"), publish=topic.put
    )
    assert changed is not None
    assert changed.make == "Kia"
    assert await rules.delete(made.id, by="cy", withdraw=topic.remove)
    assert not await rules.delete(made.id, by="cy", withdraw=topic.remove)
    assert await rules.update(made.id, lambda r: r, publish=topic.put) is None
    history = await rules.changes(made.id)
    assert [(c["change"], c["changed_by"]) for c in history] == [
        ("created", "ann"),
        ("updated", "bob"),
        ("deleted", "cy"),
    ]
    assert history[1]["rule"]["make"] == "Kia"
    assert history[2]["rule"] is None
    assert await rules.get(made.id) is None


async def test_reconcile_seeds_an_empty_system_once_and_brings_the_topic_in_line(
    rules: WatchlistStore,
) -> None:
    topic = Topic()
    seed = rule("suspicious-vehicle")
    stray = rule("stray")

    async def on_topic() -> dict[UUID, Rule]:
        return {stray.id: stray}

    assert await rules.reconcile(seed, on_topic, publish=topic.put, withdraw=topic.remove) == 2
    assert await rules.page() == [seed]
    assert sorted(topic.sent) == sorted([("put", seed.id), ("remove", stray.id)])
    # Deleted by an operator, the seed does not come back.
    assert await rules.delete(seed.id, by="ann", withdraw=topic.remove)

    async def nothing() -> dict[UUID, Rule]:
        return {}

    assert await rules.reconcile(seed, nothing, publish=topic.put, withdraw=topic.remove) == 0
    assert await rules.count() == 0
