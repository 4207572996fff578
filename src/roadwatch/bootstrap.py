"""Builds roadwatch's parts from the settings: the one place where they are wired together."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from roadwatch.alerts import KafkaAlertPublisher
from roadwatch.errors import ConfigurationError
from roadwatch.indexer.backoff import retry_until_done
from roadwatch.indexer.dead_letter import DeadLetterTopic
from roadwatch.indexer.processors import DetectSuspicious, Persist, Processor, PublishAlerts
from roadwatch.indexer.runner import BatchOutcome, Indexer
from roadwatch.rules import SuspicionRule
from roadwatch.settings import Settings
from roadwatch.stores.base import DetectionStore
from roadwatch.stores.mongo import MongoDetectionStore
from roadwatch.stores.postgres import PostgresDetectionStore

INDEXER_GROUP = "roadwatch-indexer"


def detection_store(url: str) -> DetectionStore:
    """The store named by the URL's scheme."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDetectionStore(url)
    if url.startswith("mongodb://"):
        return MongoDetectionStore(url)
    raise ConfigurationError(f"no detection store for {url.split('://', 1)[0]}:// URLs")


def kafka_producer(settings: Settings, *, linger_ms: int = 5) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_broker_url,
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
    )


def processor_chain(
    store: DetectionStore, rule: SuspicionRule, alerts: KafkaAlertPublisher
) -> list[Processor]:
    return [Persist(store), DetectSuspicious(rule), PublishAlerts(alerts)]


@asynccontextmanager
async def started_indexer(
    settings: Settings,
    *,
    stop: asyncio.Event,
    group_id: str = INDEXER_GROUP,
    max_batch: int = 5000,
    on_batch: Callable[[BatchOutcome], None] = lambda _outcome: None,
) -> AsyncIterator[Indexer]:
    """An indexer whose store and Kafka clients are open, waiting out outages at start."""
    async with AsyncExitStack() as stack:
        store = detection_store(settings.detections_db_url)
        await retry_until_done(store.open, what="opening the detection store", stop=stop)
        stack.push_async_callback(store.close)

        producer = kafka_producer(settings)
        await retry_until_done(producer.start, what="connecting to Kafka", stop=stop)
        stack.push_async_callback(producer.stop)

        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_broker_url,
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # A database outage holds a batch for as long as it lasts; stay in the group.
            max_poll_interval_ms=15 * 60 * 1000,
        )
        await retry_until_done(consumer.start, what="connecting to Kafka", stop=stop)
        stack.push_async_callback(consumer.stop)

        alerts = KafkaAlertPublisher(producer, topic=settings.alerts_topic)
        yield Indexer(
            consumer,
            topic=settings.detections_topic,
            chain=processor_chain(store, SuspicionRule(settings.suspicious_vehicle), alerts),
            dead_letter=DeadLetterTopic(producer, topic=settings.dead_letter_topic),
            max_batch=max_batch,
            on_batch=on_batch,
        )
