"""The indexer, its processor chain wired from the settings."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial

from prometheus_client import CollectorRegistry

from roadwatch.alerts import ALERT_BATCH_BYTES, AlertPublisher, KafkaAlertPublisher
from roadwatch.bootstrap.clients import kafka_producer, rules_consumer
from roadwatch.bootstrap.resources import Resources
from roadwatch.bootstrap.stores import detection_store
from roadwatch.indexer.batch import MAX_BATCH
from roadwatch.indexer.dead_letter import DeadLetterTopic, LetterSender
from roadwatch.indexer.error_policy import ErrorPolicy
from roadwatch.indexer.metrics import IndexerMetrics
from roadwatch.indexer.pending import PendingAlerts, PendingLetters
from roadwatch.indexer.processors import (
    MatchWatchlists,
    Persist,
    Processor,
    PublishAlerts,
    RecordAlerts,
    RefuseAheadOf,
    RefuseOlderThan,
)
from roadwatch.indexer.retention import DayKeeper
from roadwatch.indexer.runner import Indexer
from roadwatch.indexer.transactions import PartitionTransactions
from roadwatch.kafka.check import check_kafka
from roadwatch.kafka.clients import kafka_options
from roadwatch.kafka.ownership import still_holds
from roadwatch.kafka.reader import consumer
from roadwatch.kafka.topics import INDEXER_GROUP
from roadwatch.kafka.types import AIOKafkaConsumer, AIOKafkaProducer
from roadwatch.rejections import Reason
from roadwatch.runtime.lifecycle import cancelled
from roadwatch.runtime.readiness import STUCK_AFTER
from roadwatch.settings import Settings
from roadwatch.stores.detection_store import DetectionStore
from roadwatch.watchlists.matching import RuleIndex
from roadwatch.watchlists.rules import seed_rule
from roadwatch.watchlists.topic import RuleFollower


def kafka_consumer(settings: Settings, group_id: str) -> AIOKafkaConsumer:
    """The indexer's consumer: commits are its own, made once a batch is done."""
    return consumer(
        **kafka_options(settings),
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # A database outage holds a batch for as long as it lasts; stay in the group.
        max_poll_interval_ms=15 * 60 * 1000,
        # A light stream is read every 10 ms rather than record by record: each batch
        # costs a transaction and a commit, and at 1,000 detections/s this cuts the
        # indexer's CPU threefold while alerts arrive sooner. A heavy one fills 256 KiB
        # well within that time and is not held back.
        fetch_min_bytes=256 * 1024,
        fetch_max_wait_ms=10,
    )


ProducerFactory = Callable[[Settings], AIOKafkaProducer]


ConsumerFactory = Callable[[Settings, str], AIOKafkaConsumer]


def indexer_producer(settings: Settings, transactional_id: str | None = None) -> AIOKafkaProducer:
    """The indexer's producer: of dead letters and alerts, or of one partition's alerts in
    transactions."""
    # The indexer sends alerts in whole batches of its own: lingering for more only delays.
    return kafka_producer(
        settings, linger_ms=0, transactional_id=transactional_id, max_batch_size=ALERT_BATCH_BYTES
    )


def processor_chain(
    store: DetectionStore,
    rules: Callable[[], RuleIndex],
    alerts: AlertPublisher,
    *,
    metrics: IndexerMetrics,
    keep_for: timedelta | None = None,
    accept_for: timedelta | None = None,
    accept_ahead: timedelta | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[Processor]:
    windows: list[Processor] = [
        RefuseOlderThan(window, reason=reason, what=what, clock=clock)
        for window, reason, what in (
            (accept_for, Reason.TOO_OLD, "window of times the store accepts"),
            (keep_for, Reason.EXPIRED, "retention window"),
        )
        if window is not None
    ]
    if accept_ahead is not None:
        windows.append(RefuseAheadOf(accept_ahead, clock=clock))
    return [
        *windows,
        Persist(store, metrics=metrics),
        MatchWatchlists(rules),
        RecordAlerts(store),
        PublishAlerts(alerts, metrics=metrics),
    ]


@asynccontextmanager
async def started_indexer(
    settings: Settings,
    *,
    stop: asyncio.Event,
    group_id: str = INDEXER_GROUP,
    max_batch: int = MAX_BATCH,
    registry: CollectorRegistry | None = None,
    stuck_after: float = STUCK_AFTER,
    producer_factory: ProducerFactory = indexer_producer,
    consumer_factory: ConsumerFactory = kafka_consumer,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AsyncIterator[Indexer]:
    """An indexer whose store and Kafka clients are open, waiting out outages at start."""
    async with AsyncExitStack() as stack:
        resources = Resources(stack, stop=stop)
        store = await resources.opened(
            detection_store(settings.detections_db_url), "opening the detection store"
        )

        topics = [
            settings.detections_topic,
            settings.alerts_topic,
            settings.dead_letter_topic,
            settings.watchlists_topic,
        ]
        await resources.ready("checking Kafka", lambda: check_kafka(settings, topics=topics))
        producer = await resources.started(producer_factory(settings), "connecting to Kafka")
        detections = await resources.started(
            consumer_factory(settings, group_id), "connecting to Kafka"
        )

        policy = ErrorPolicy(stop=stop, stuck_after=stuck_after)
        # The rules in force before the first detection: the topic read to its end.
        rules = RuleFollower(
            lambda: rules_consumer(settings),
            topic=settings.watchlists_topic,
            seed=seed_rule(settings.suspicious_vehicle),
            retry=policy.retry,
        )
        await resources.started(rules, "reading the watchlists")

        registry = registry or CollectorRegistry()
        metrics = IndexerMetrics(registry)
        metrics.watchlist_rules.set_function(lambda: rules.current.enabled)
        metrics.watchlist_skipped.set_function(lambda: rules.skipped)
        alerts: AlertPublisher = KafkaAlertPublisher(producer, topic=settings.alerts_topic)
        letters: LetterSender | PendingLetters = LetterSender(
            producer, topic=settings.dead_letter_topic
        )
        commits = None
        if settings.alerts_exactly_once:
            alerts = PendingAlerts()
            letters = PendingLetters(settings.dead_letter_topic)
            commits = PartitionTransactions(
                partial(indexer_producer, settings),
                alerts_topic=settings.alerts_topic,
                group=group_id,
                pending=alerts,
                holds=partial(still_holds, detections),
                committed=detections.committed,
                letters=letters,
            )
            resources.on_exit(commits.close, "closing the partitions' transactions")

        keep_for = retention_window(settings)
        days = DayKeeper(store, keep_for=keep_for, clock=clock, registry=registry)
        # Before the first batch, so that a restart after a long stop removes old days first.
        await resources.ready("keeping the store's days", days.upkeep)
        upkeep = asyncio.create_task(days.run(stop), name="store upkeep")
        resources.on_exit(lambda: cancelled(upkeep), "stopping the store's upkeep")
        yield Indexer(
            detections,
            topic=settings.detections_topic,
            chain=processor_chain(
                store,
                lambda: rules.current,
                alerts,
                metrics=metrics,
                keep_for=keep_for,
                accept_for=accepted_window(settings),
                accept_ahead=timedelta(days=settings.detections_accept_ahead_days),
                clock=clock,
            ),
            dead_letter=DeadLetterTopic(letters, metrics=metrics),
            metrics=metrics,
            policy=policy,
            ping_store=store.ping,
            max_batch=max_batch,
            commits=commits,
        )


def accepted_window(settings: Settings) -> timedelta | None:
    days = settings.detections_accept_days
    return None if days is None else timedelta(days=days)


def retention_window(settings: Settings) -> timedelta | None:
    days = settings.detections_retention_days
    return None if days is None else timedelta(days=days)
