"""The webhook store against a real PostgreSQL: batches of any size, claims that two
deliverers cannot both take, and pruning."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from roadwatch.stores.webhooks_postgres import PostgresWebhookStore
from roadwatch.webhooks.retries import Outcome
from roadwatch.webhooks.signing import new_secret
from roadwatch.webhooks.store import Attempt
from roadwatch.webhooks.subscriptions import Delivery, Webhook
from tests.helpers.servers import Servers, fresh_postgres_database

pytestmark = pytest.mark.postgres

# More rows than PostgreSQL takes parameters for in one statement.
MANY = 5000


@pytest.fixture
async def store(servers: Servers) -> AsyncIterator[PostgresWebhookStore]:
    async with fresh_postgres_database(servers) as url:
        store = PostgresWebhookStore(url)
        await store.open()
        try:
            yield store
        finally:
            await store.close()


async def _webhook(store: PostgresWebhookStore) -> Webhook:
    webhook = Webhook(
        id=uuid.uuid4(),
        url="https://example.com/hook",
        rule_ids=None,
        description="",
        enabled=True,
        secret=new_secret(),
        created_at=datetime.now(UTC),
    )
    return await store.create(webhook, created_by="admin")


def _deliveries(webhook: Webhook, count: int) -> list[Delivery]:
    now = datetime.now(UTC)
    return [
        Delivery(id=uuid.uuid4(), webhook_id=webhook.id, body=b'{"n":1}', created_at=now)
        for _ in range(count)
    ]


async def test_batches_larger_than_a_statement_takes_are_held_recorded_and_found(
    store: PostgresWebhookStore,
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
    store: PostgresWebhookStore,
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
    store: PostgresWebhookStore,
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
    store: PostgresWebhookStore,
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
