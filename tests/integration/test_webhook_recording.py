"""Two deliverers recording their attempts at once, as every deliverer of a system does: each
batch of attempts updates the health of the subscriptions it names, and two batches that
name the same subscriptions in other orders must not deadlock."""

import asyncio
import random
import uuid
from datetime import UTC, datetime

import pytest

from roadwatch.stores.webhooks_postgres import PostgresWebhookStore
from roadwatch.webhooks.retries import Outcome
from roadwatch.webhooks.store import Attempt
from roadwatch.webhooks.subscriptions import Delivery, Webhook
from tests.helpers.factories import make_webhook
from tests.helpers.servers import Servers, fresh_postgres_database

pytestmark = [pytest.mark.postgres]

ROUNDS = 30


def _attempts(webhooks: list[Webhook], outcome: Outcome) -> list[Attempt]:
    now = datetime.now(UTC)
    return [
        Attempt(
            Delivery(id=uuid.uuid4(), webhook_id=w.id, body=b"{}", created_at=now, attempts=1),
            now,
            outcome,
            503 if outcome == Outcome.RETRY else 200,
            1.0,
            "HTTP 503" if outcome == Outcome.RETRY else None,
        )
        for w in webhooks
    ]


async def test_two_deliverers_recording_the_same_subscriptions_in_any_order_never_deadlock(
    servers: Servers,
) -> None:
    async with fresh_postgres_database(servers) as url:
        first, second = PostgresWebhookStore(url), PostgresWebhookStore(url)
        await first.open()
        await second.open()
        try:
            webhooks = [await first.create(make_webhook(), created_by="admin") for _ in range(6)]
            rng = random.Random(3)
            for _ in range(ROUNDS):
                orders = [rng.sample(webhooks, len(webhooks)) for _ in range(2)]
                outcomes = await asyncio.gather(
                    first.record(_attempts(orders[0], Outcome.RETRY)),
                    second.record(_attempts(orders[1], Outcome.DELIVERED)),
                    return_exceptions=True,
                )
                failed = [o for o in outcomes if isinstance(o, BaseException)]
                assert not failed, failed
            for webhook in webhooks:
                found = await first.get(webhook.id)
                assert found is not None
                health = found[1]
                assert health.last_success_at is not None
                assert health.last_failure_at is not None
                assert health.pending == ROUNDS
        finally:
            await first.close()
            await second.close()
