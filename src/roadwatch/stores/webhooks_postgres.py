"""Webhook subscriptions, their pending deliveries and every attempt, in the users' database:
one store over one connection pool, made of its two halves."""

from roadwatch.stores.webhook_deliveries_postgres import PostgresDeliveryQueue
from roadwatch.stores.webhook_subscriptions_postgres import PostgresSubscriptions


class PostgresWebhookStore(PostgresSubscriptions, PostgresDeliveryQueue):
    def __init__(
        self, url: str, *, query_timeout: float | None = None, pool_size: int = 10
    ) -> None:
        super().__init__(url, migrations="users", query_timeout=query_timeout, pool_size=pool_size)
