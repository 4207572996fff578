"""What the webhooks feature relies on from its store, against PostgreSQL and the in-memory
fake that unit tests use: subscriptions and their health, batches of any size, claims that
two deliverers cannot both take, and pruning."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from roadwatch.stores.webhooks_postgres import PostgresWebhookStore
from roadwatch.webhooks.retries import Outcome
from roadwatch.webhooks.store import Attempt, Health, TooManyWebhooks, WebhookStore
from roadwatch.webhooks.subscriptions import MAX_WEBHOOKS, Delivery, Webhook
from tests.contract.backends import BOTH, under_contract
from tests.helpers.factories import make_webhook
from tests.helpers.servers import Servers
from tests.helpers.webhook_fake import InMemoryWebhookStore

# More rows than PostgreSQL takes parameters for in one statement.
MANY = 5000


@pytest.fixture(params=BOTH)
async def store(request: pytest.FixtureRequest, servers: Servers) -> AsyncIterator[WebhookStore]:
    async with under_contract(
        request.param, servers, real=PostgresWebhookStore, fake=InMemoryWebhookStore
    ) as store:
        yield store


async def _webhook(store: WebhookStore, **fields: object) -> Webhook:
    return await store.create(make_webhook(**fields), created_by="admin")


def _deliveries(webhook: Webhook, count: int) -> list[Delivery]:
    now = datetime.now(UTC)
    return [
        Delivery(id=uuid.uuid4(), webhook_id=webhook.id, body=b'{"n":1}', created_at=now)
        for _ in range(count)
    ]


async def test_batches_larger_than_a_statement_takes_are_held_recorded_and_found(
    store: WebhookStore,
) -> None:
    webhook = await _webhook(store)
    held = _deliveries(webhook, MANY)
    await store.enqueue(held)
    await store.enqueue(held[:10])  # held already: left as they are
    delivered = _deliveries(webhook, MANY)
    now = datetime.now(UTC)
    for delivery in delivered:
        delivery.attempts = 1
    await store.record([Attempt(d, now, Outcome.DELIVERED, 200, 1.0, None) for d in delivered])
    strangers = _deliveries(webhook, 100)
    ids = [d.id for d in held + delivered + strangers]
    assert await store.seen(ids) == {d.id for d in held + delivered}
    assert (await store.backlog())[0] == MANY
    found = await store.get(webhook.id)
    assert found is not None
    assert found[1].pending == MANY
    assert found[1].last_success_at is not None


async def test_a_claimed_delivery_is_not_claimed_again_until_its_lease_ends(
    store: WebhookStore,
) -> None:
    webhook, other = await _webhook(store), await _webhook(store)
    await store.enqueue(_deliveries(webhook, 30) + _deliveries(other, 30))
    first = await store.claim_due({webhook.id: 8, other.id: 3}, lease=60)
    assert sum(d.webhook_id == webhook.id for d in first) == 8
    assert sum(d.webhook_id == other.id for d in first) == 3
    assert all(d.held for d in first)
    second = await store.claim_due({webhook.id: 100}, lease=60)
    assert len(second) == 22
    assert not {d.id for d in first} & {d.id for d in second}
    assert await store.claim_due({webhook.id: 100}, lease=60) == []


async def test_a_removed_subscription_takes_its_deliveries_and_late_attempts_are_dropped(
    store: WebhookStore,
) -> None:
    webhook = await _webhook(store)
    deliveries = _deliveries(webhook, 3)
    await store.enqueue(deliveries)
    assert await store.delete(webhook.id)
    assert (await store.backlog())[0] == 0
    # An attempt that was under way when it went is not recorded, and raises nothing.
    await store.record(
        [Attempt(deliveries[0], datetime.now(UTC), Outcome.RETRY, 500, 1.0, "HTTP 500")]
    )
    # Nor is a delivery its deliverer was about to hold; one of a subscription that still
    # exists, in the same batch, is.
    kept = await _webhook(store)
    late, alive = _deliveries(webhook, 1)[0], _deliveries(kept, 1)[0]
    await store.enqueue([late, alive])
    assert await store.seen([d.id for d in [*deliveries, late, alive]]) == {alive.id}


async def test_pruning_removes_old_attempts_and_finished_deliveries_only(
    store: WebhookStore,
) -> None:
    webhook = await _webhook(store)
    old, pending = _deliveries(webhook, 2)
    long_ago = datetime.now(UTC) - timedelta(days=30)
    old.attempts = 1
    await store.record([Attempt(old, long_ago, Outcome.FAILED, 410, 1.0, "HTTP 410")])
    await store.enqueue([pending])
    removed = await store.prune(datetime.now(UTC) - timedelta(days=7))
    # The attempt is old; its delivery row was written now, so it stays, as does the pending one.
    assert removed == 1
    assert await store.seen([old.id, pending.id]) == {old.id, pending.id}
    assert (await store.backlog())[0] == 1


async def test_subscriptions_read_back_oldest_first_and_every_change_moves_the_version(
    store: WebhookStore,
) -> None:
    start = datetime.now(UTC)
    rule = uuid.uuid4()
    first = await _webhook(store, created_at=start, rule_ids=frozenset({rule}), description="a")
    second = await _webhook(store, created_at=start + timedelta(seconds=1), enabled=False)
    assert [w for w, _ in await store.page()] == [first, second]
    versions = [await store.version()]
    assert versions[0][0] == 2
    version, followed = await store.subscriptions()
    assert version == versions[0]
    assert set(followed) == {first, second}

    assert await store.update(second.id, enabled=True, rule_ids=[rule, rule])
    versions.append(await store.version())
    found = await store.get(second.id)
    assert found is not None
    assert found[0].enabled
    assert found[0].rule_ids == frozenset({rule})
    assert not await store.update(uuid.uuid4(), enabled=False)

    assert await store.rotate_secret(first.id, "whsec_new", overlap=60)
    versions.append(await store.version())
    found = await store.get(first.id)
    assert found is not None
    assert found[0].secrets_in_force(datetime.now(UTC)) == ["whsec_new", first.secret]
    assert found[0].secrets_in_force(datetime.now(UTC) + timedelta(seconds=61)) == ["whsec_new"]

    assert await store.delete(first.id)
    assert not await store.delete(first.id)
    versions.append(await store.version())
    assert versions[-1][0] == 1
    assert len(set(versions)) == len(versions)
    assert await store.get(first.id) is None


async def test_no_more_subscriptions_than_the_bound_are_made_even_at_once(
    store: WebhookStore,
) -> None:
    await asyncio.gather(*(_webhook(store) for _ in range(MAX_WEBHOOKS - 5)))
    made = await asyncio.gather(*(_webhook(store) for _ in range(10)), return_exceptions=True)
    assert sum(isinstance(m, Webhook) for m in made) == 5
    assert all(isinstance(m, TooManyWebhooks) for m in made if not isinstance(m, Webhook))
    assert (await store.version())[0] == MAX_WEBHOOKS


async def test_health_follows_failures_given_up_and_the_next_success(store: WebhookStore) -> None:
    webhook = await _webhook(store)
    retried, given_up, delivered = _deliveries(webhook, 3)
    t0 = datetime.now(UTC)

    await store.record([Attempt(retried, t0, Outcome.RETRY, 503, 1.0, "HTTP 503")])
    health = await _health(store, webhook)
    assert (health.failing_since, health.last_failure_at, health.last_error) == (
        None,
        t0,
        "HTTP 503",
    )
    assert health.pending == 1

    t1 = t0 + timedelta(seconds=1)
    await store.record([Attempt(given_up, t1, Outcome.FAILED, 410, 1.0, "HTTP 410")])
    assert (await _health(store, webhook)).failing_since == t1
    await store.record([Attempt(given_up, t1 + timedelta(seconds=1), Outcome.FAILED, 410, 1.0, "")])
    assert (await _health(store, webhook)).failing_since == t1

    t3 = t0 + timedelta(seconds=3)
    await store.record([Attempt(delivered, t3, Outcome.DELIVERED, 200, 1.0, None)])
    health = await _health(store, webhook)
    assert (health.failing_since, health.last_success_at) == (None, t3)
    assert health.pending == 1


async def test_attempts_page_newest_first_from_a_cursor(store: WebhookStore) -> None:
    webhook, other = await _webhook(store), await _webhook(store)
    t0 = datetime.now(UTC)
    for n, delivery in enumerate(_deliveries(webhook, 5) + _deliveries(other, 2)):
        delivery.attempts = 1
        at = t0 + timedelta(seconds=n)
        await store.record([Attempt(delivery, at, Outcome.RETRY, 500, float(n), "HTTP 500")])

    newest = await store.attempts(webhook.id, limit=3)
    assert [a["latency_ms"] for a in newest] == [4.0, 3.0, 2.0]
    cursor = (newest[-1]["attempted_at"], newest[-1]["id"])
    rest = await store.attempts(webhook.id, limit=3, before=cursor)
    assert [a["latency_ms"] for a in rest] == [1.0, 0.0]
    assert {a["outcome"] for a in newest + rest} == {"retry"}
    assert [a["attempt"] for a in rest] == [1, 1]


async def _health(store: WebhookStore, webhook: Webhook) -> Health:
    found = await store.get(webhook.id)
    assert found is not None
    return found[1]
