"""Builds roadwatch's parts from the settings: the one place where they are wired together."""

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from uuid import UUID

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from roadwatch.alerts import KafkaAlertPublisher
from roadwatch.api.alerts_feed import KafkaAlertFeed
from roadwatch.api.app import create_app
from roadwatch.api.login_throttle import LoginThrottle, ThrottleRules
from roadwatch.api.metrics import ApiMetrics
from roadwatch.api.recent_users import RecentUsers
from roadwatch.api.security import Passwords, Tokens, secret_weakness
from roadwatch.api.services import ApiServices
from roadwatch.api.setup_state import SetupState
from roadwatch.errors import ConfigurationError, RoadwatchError
from roadwatch.indexer.backoff import retry_until_done
from roadwatch.indexer.dead_letter import DeadLetterTopic
from roadwatch.indexer.error_policy import STUCK_AFTER, ErrorPolicy
from roadwatch.indexer.metrics import IndexerMetrics
from roadwatch.indexer.processors import (
    MatchWatchlists,
    Persist,
    Processor,
    PublishAlerts,
    RecordAlerts,
    RefuseExpired,
)
from roadwatch.indexer.retention import DayKeeper
from roadwatch.indexer.runner import Indexer
from roadwatch.kafka_check import check_kafka
from roadwatch.kafka_clients import kafka_options
from roadwatch.kafka_topics import DELIVER_GROUP, INDEXER_GROUP
from roadwatch.prometheus import served_registry
from roadwatch.settings import Settings
from roadwatch.stores.base import DetectionStore
from roadwatch.stores.mongo import MongoDetectionStore
from roadwatch.stores.postgres import PostgresDetectionStore
from roadwatch.stores.users_postgres import PostgresUserStore
from roadwatch.stores.watchlists_postgres import PostgresWatchlistStore
from roadwatch.stores.webhooks_postgres import PostgresWebhookStore
from roadwatch.watchlists.matching import RuleIndex
from roadwatch.watchlists.registry import Watchlists
from roadwatch.watchlists.rules import Rule, seed_rule
from roadwatch.watchlists.topic import RuleFollower, RulePublisher, read_rules
from roadwatch.webhooks.dead_letters import DeadLetters
from roadwatch.webhooks.deliverer import Deliverer
from roadwatch.webhooks.metrics import DeliveryMetrics
from roadwatch.webhooks.registry import WebhookRegistry
from roadwatch.webhooks.retries import RetrySchedule
from roadwatch.webhooks.sender import Sender
from roadwatch.webhooks.targets import TargetPolicy, parse_networks

log = logging.getLogger(__name__)


def detection_store(url: str, *, query_timeout: float | None = None) -> DetectionStore:
    """The store named by the URL's scheme; with `query_timeout`, no query runs longer."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDetectionStore(url, query_timeout=query_timeout)
    if url.startswith("mongodb://"):
        return MongoDetectionStore(url, query_timeout=query_timeout)
    raise ConfigurationError(f"no detection store for {url.split('://', 1)[0]}:// URLs")


def kafka_producer(settings: Settings, *, linger_ms: int = 5) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **kafka_options(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
    )


def kafka_consumer(settings: Settings, group_id: str) -> AIOKafkaConsumer:
    """The indexer's consumer: commits are its own, made once a batch is done."""
    return AIOKafkaConsumer(
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


def _indexer_producer(settings: Settings) -> AIOKafkaProducer:
    # The indexer sends alerts in whole batches of its own: lingering for more only delays.
    return kafka_producer(settings, linger_ms=0)


def rules_consumer(settings: Settings) -> AIOKafkaConsumer:
    """A reader of every partition of the watchlists topic, in no group."""
    return AIOKafkaConsumer(
        settings.watchlists_topic,
        **kafka_options(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


def processor_chain(
    store: DetectionStore,
    rules: Callable[[], RuleIndex],
    alerts: KafkaAlertPublisher,
    *,
    metrics: IndexerMetrics,
    keep_for: timedelta | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[Processor]:
    expiry: list[Processor] = [] if keep_for is None else [RefuseExpired(keep_for, clock=clock)]
    return [
        *expiry,
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
    max_batch: int = 5000,
    registry: CollectorRegistry | None = None,
    stuck_after: float = STUCK_AFTER,
    producer_factory: ProducerFactory = _indexer_producer,
    consumer_factory: ConsumerFactory = kafka_consumer,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> AsyncIterator[Indexer]:
    """An indexer whose store and Kafka clients are open, waiting out outages at start."""
    async with AsyncExitStack() as stack:
        store = detection_store(settings.detections_db_url)
        await retry_until_done(store.open, what="opening the detection store", stop=stop)
        stack.push_async_callback(store.close)

        topics = [
            settings.detections_topic,
            settings.alerts_topic,
            settings.dead_letter_topic,
            settings.watchlists_topic,
        ]
        await retry_until_done(
            lambda: check_kafka(settings, topics=topics), what="checking Kafka", stop=stop
        )
        producer = producer_factory(settings)
        await retry_until_done(producer.start, what="connecting to Kafka", stop=stop)
        stack.push_async_callback(producer.stop)

        consumer = consumer_factory(settings, group_id)
        await retry_until_done(consumer.start, what="connecting to Kafka", stop=stop)
        stack.push_async_callback(consumer.stop)

        policy = ErrorPolicy(stop=stop, stuck_after=stuck_after)
        # The rules in force before the first detection: the topic read to its end.
        rules = RuleFollower(
            lambda: rules_consumer(settings),
            topic=settings.watchlists_topic,
            seed=seed_rule(settings.suspicious_vehicle),
            retry=policy.retry,
        )
        await retry_until_done(rules.start, what="reading the watchlists", stop=stop)
        stack.push_async_callback(rules.stop)

        registry = registry or CollectorRegistry()
        metrics = IndexerMetrics(registry)
        metrics.watchlist_rules.set_function(lambda: rules.current.enabled)
        metrics.watchlist_skipped.set_function(lambda: rules.skipped)
        alerts = KafkaAlertPublisher(producer, topic=settings.alerts_topic)

        keep_for = retention_window(settings)
        days = DayKeeper(store, keep_for=keep_for, clock=clock, registry=registry)
        # Before the first batch, so that a restart after a long stop removes old days first.
        await retry_until_done(days.upkeep, what="keeping the store's days", stop=stop)
        upkeep = asyncio.create_task(days.run(stop), name="store upkeep")
        stack.push_async_callback(_cancelled, upkeep)
        yield Indexer(
            consumer,
            topic=settings.detections_topic,
            chain=processor_chain(
                store,
                lambda: rules.current,
                alerts,
                metrics=metrics,
                keep_for=keep_for,
                clock=clock,
            ),
            dead_letter=DeadLetterTopic(
                producer, topic=settings.dead_letter_topic, metrics=metrics
            ),
            metrics=metrics,
            policy=policy,
            ping_store=store.ping,
            max_batch=max_batch,
        )


def retention_window(settings: Settings) -> timedelta | None:
    days = settings.detections_retention_days
    return None if days is None else timedelta(days=days)


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def retry_schedule(settings: Settings) -> RetrySchedule:
    return RetrySchedule(
        first=settings.webhook_retry_first,
        longest=settings.webhook_retry_longest,
        give_up_after=settings.webhook_retry_for,
    )


def target_policy(settings: Settings) -> TargetPolicy:
    return TargetPolicy(parse_networks(settings.webhook_allowed_networks))


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
        store = PostgresWebhookStore(settings.users_db_url)
        await retry_until_done(store.open, what="opening the webhook store", stop=stop)
        stack.push_async_callback(store.close)

        topics = [settings.alerts_topic, settings.webhooks_dead_letter_topic]
        await retry_until_done(
            lambda: check_kafka(settings, topics=topics), what="checking Kafka", stop=stop
        )
        producer = kafka_producer(settings, linger_ms=0)
        await retry_until_done(producer.start, what="connecting to Kafka", stop=stop)
        stack.push_async_callback(producer.stop)

        sender = Sender(target_policy(settings), timeout=settings.webhook_timeout)
        await sender.start()
        stack.push_async_callback(sender.close)

        consumer = AIOKafkaConsumer(
            **kafka_options(settings),
            group_id=group_id,
            enable_auto_commit=False,
            # Subscriptions take alerts published after they were made: reading a new
            # group's topic from the start sends nothing old.
            auto_offset_reset="earliest",
            fetch_max_wait_ms=10,
        )
        deliverer = Deliverer(
            consumer,
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
        consumer.subscribe([settings.alerts_topic], listener=deliverer.listener())
        await retry_until_done(consumer.start, what="connecting to Kafka", stop=stop)
        stack.push_async_callback(consumer.stop)
        yield deliverer


def token_secret(settings: Settings) -> str:
    """The JWT signing key: required, and strong, in production; generated in development."""
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
    weakness = None if secret is None else secret_weakness(secret)
    if secret is not None and weakness is None:
        return secret
    if settings.environment == "production":
        raise ConfigurationError(
            f"JWT_SECRET must be set in production: {weakness or 'it is not set'}. "
            "Generate one with: openssl rand -base64 48"
        )
    if secret is not None:
        log.warning("JWT_SECRET is weak (%s): acceptable only in development", weakness)
        return secret
    log.warning(
        "DEVELOPMENT MODE: no JWT_SECRET set, so tokens are signed with a key generated for "
        "this process; they stop working when it restarts. Set JWT_SECRET in production."
    )
    return secrets.token_urlsafe(48)


class DependencyUnavailable(RoadwatchError):
    """A database or the broker did not answer within the time allowed at start-up."""


async def _open_within(seconds: float, what: str, step: Callable[[], Awaitable[None]]) -> None:
    # Waits out a dependency that is still starting, but not for ever: a process that
    # cannot start says so and exits, and its supervisor decides what next.
    try:
        async with asyncio.timeout(seconds):
            await retry_until_done(step, what=what, stop=asyncio.Event())
    except TimeoutError:
        raise DependencyUnavailable(f"{what}: no success within {seconds:.0f} s") from None


async def kafka_checked(settings: Settings, *, topics: list[str], patience: float) -> None:
    """Return once Kafka answers and shows `topics`; a refusal (TLS, credentials, an ACL) is
    raised at once, as KafkaRefused, and a broker away for `patience` s as
    DependencyUnavailable."""
    await _open_within(patience, "checking Kafka", lambda: check_kafka(settings, topics=topics))


def api_topics(settings: Settings) -> list[str]:
    return [settings.alerts_topic, settings.watchlists_topic]


@asynccontextmanager
async def opened_api_services(
    settings: Settings,
    *,
    tokens: Tokens,
    metrics: ApiMetrics,
    processes: int = 1,
    patience: float = 60.0,
) -> AsyncIterator[ApiServices]:
    """The API's stores and alert feed, open, for one of `processes` serving the API; waits
    up to `patience` s for each to answer."""
    async with AsyncExitStack() as stack:
        timeout = settings.api_query_timeout
        detections = detection_store(settings.detections_db_url, query_timeout=timeout)
        await _open_within(patience, "opening the detection store", detections.open)
        stack.push_async_callback(detections.close)
        users = PostgresUserStore(settings.users_db_url, query_timeout=timeout)
        await _open_within(patience, "opening the user store", users.open)
        stack.push_async_callback(users.close)
        await kafka_checked(settings, topics=api_topics(settings), patience=patience)
        watchlists = await _opened_watchlists(settings, stack, patience=patience)
        webhook_store = PostgresWebhookStore(settings.users_db_url, query_timeout=timeout)
        await _open_within(patience, "opening the webhook store", webhook_store.open)
        stack.push_async_callback(webhook_store.close)

        async def rule_exists(rule_id: UUID) -> bool:
            return await watchlists.store.get(rule_id) is not None

        webhooks = WebhookRegistry(
            webhook_store,
            policy=target_policy(settings),
            rule_exists=rule_exists,
            secret_overlap=settings.webhook_secret_overlap,
        )
        feed = KafkaAlertFeed(
            kafka=kafka_options(settings),
            topic=settings.alerts_topic,
            skipped=metrics.alerts_skipped.inc,
            # Set, not read at scrape time: worker processes' gauges are summed from files.
            clients_changed=metrics.sse_clients.set,
        )
        await _open_within(patience, "following the alerts topic", feed.start)
        stack.push_async_callback(feed.stop)
        yield ApiServices(
            detections=detections,
            users=users,
            recent_users=RecentUsers(users),
            alerts=feed,
            passwords=Passwords(),
            tokens=tokens,
            setup=SetupState(users),
            login_throttle=LoginThrottle.from_uri(
                settings.login_throttle_storage,
                ThrottleRules(per_address=settings.login_attempts_per_address),
                processes=processes,
            ),
            metrics=metrics,
            watchlists=watchlists,
            webhooks=webhooks,
        )


async def _opened_watchlists(
    settings: Settings, stack: AsyncExitStack, *, patience: float
) -> Watchlists:
    """The API's watchlists, their topic brought in line with the database."""
    store = PostgresWatchlistStore(settings.users_db_url, query_timeout=settings.api_query_timeout)
    await _open_within(patience, "opening the watchlist store", store.open)
    stack.push_async_callback(store.close)
    producer = kafka_producer(settings, linger_ms=0)
    await _open_within(patience, "connecting to Kafka", producer.start)
    stack.push_async_callback(producer.stop)

    async def published() -> dict[UUID, Rule]:
        return (await read_rules(rules_consumer(settings), settings.watchlists_topic)).rules

    watchlists = Watchlists(
        store, RulePublisher(producer, topic=settings.watchlists_topic), published=published
    )
    seed = seed_rule(settings.suspicious_vehicle)
    await _open_within(patience, "publishing the watchlists", lambda: _reconciled(watchlists, seed))
    return watchlists


async def _reconciled(watchlists: Watchlists, seed: Rule) -> None:
    sent = await watchlists.reconcile(seed)
    if sent:
        log.info("brought the watchlists topic in line with the database: %d record(s)", sent)


def api_app(settings: Settings, *, processes: int = 1) -> FastAPI:
    """The API for these settings, served by one of `processes` (workers); ConfigurationError
    if the settings are not fit to serve it."""
    tokens = Tokens(token_secret(settings))
    registry = CollectorRegistry()
    metrics = ApiMetrics(registry)
    return create_app(
        lambda: opened_api_services(settings, tokens=tokens, metrics=metrics, processes=processes),
        registry=served_registry(registry),
        metrics=metrics,
    )
