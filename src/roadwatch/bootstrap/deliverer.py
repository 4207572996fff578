"""The webhook deliverer, wired from the settings."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from prometheus_client import CollectorRegistry

from roadwatch.bootstrap.clients import kafka_producer, target_policy
from roadwatch.bootstrap.resources import Resources
from roadwatch.kafka.check import check_kafka
from roadwatch.kafka.clients import kafka_options
from roadwatch.kafka.reader import consumer
from roadwatch.kafka.topics import DELIVER_GROUP
from roadwatch.settings import Settings
from roadwatch.stores.webhooks_postgres import PostgresWebhookStore
from roadwatch.webhooks.dead_letters import DeadLetters
from roadwatch.webhooks.deliverer import Deliverer
from roadwatch.webhooks.metrics import DeliveryMetrics
from roadwatch.webhooks.retries import RetrySchedule
from roadwatch.webhooks.sender import Sender


def retry_schedule(settings: Settings) -> RetrySchedule:
    return RetrySchedule(
        first=settings.webhook_retry_first,
        longest=settings.webhook_retry_longest,
        give_up_after=settings.webhook_retry_for,
    )


@asynccontextmanager
async def started_deliverer(
    settings: Settings,
    *,
    stop: asyncio.Event,
    group_id: str = DELIVER_GROUP,
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[Deliverer]:
    """A deliverer whose store, Kafka clients and HTTP client are open."""
    async with AsyncExitStack() as stack:
        resources = Resources(stack, stop=stop)
        store = await resources.opened(
            PostgresWebhookStore(settings.users_db_url), "opening the webhook store"
        )

        topics = [settings.alerts_topic, settings.webhooks_dead_letter_topic]
        await resources.ready("checking Kafka", lambda: check_kafka(settings, topics=topics))
        producer = await resources.started(
            kafka_producer(settings, linger_ms=0), "connecting to Kafka"
        )

        sender = Sender(
            target_policy(settings),
            timeout=settings.webhook_timeout,
        )
        await sender.start()
        resources.on_exit(sender.close, "closing the webhook sender")

        alerts = consumer(
            **kafka_options(settings),
            group_id=group_id,
            enable_auto_commit=False,
            # Subscriptions take alerts published after they were made: reading a new
            # group's topic from the start sends nothing old.
            auto_offset_reset="earliest",
            fetch_max_wait_ms=10,
        )
        deliverer = Deliverer(
            alerts,
            topic=settings.alerts_topic,
            store=store,
            sender=sender,
            dead_letters=DeadLetters(producer, topic=settings.webhooks_dead_letter_topic),
            metrics=DeliveryMetrics(registry or CollectorRegistry()),
            schedule=retry_schedule(settings),
            stop=stop,
            concurrency=settings.webhook_concurrency,
            timeout=settings.webhook_timeout,
            history_days=settings.webhook_history_days,
        )
        alerts.subscribe([settings.alerts_topic], listener=deliverer.listener())
        await resources.started(alerts, "connecting to Kafka")
        yield deliverer
