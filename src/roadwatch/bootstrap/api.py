"""The Detections API, its services wired from the settings."""

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from uuid import UUID

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from roadwatch.api.alerts_feed import KafkaAlertFeed
from roadwatch.api.app import create_app
from roadwatch.api.login_throttle import LoginThrottle, ThrottleRules
from roadwatch.api.metrics import ApiMetrics
from roadwatch.api.recent_users import RecentUsers
from roadwatch.api.security import Passwords, Tokens
from roadwatch.api.services import ApiServices
from roadwatch.api.setup_state import SetupState
from roadwatch.api.signing_key import key_weakness
from roadwatch.api.stream_slots import StreamSlots, streams_the_process_can_hold
from roadwatch.bootstrap.clients import (
    kafka_checked,
    kafka_producer,
    open_within,
    rules_consumer,
    target_policy,
)
from roadwatch.bootstrap.resources import Resources
from roadwatch.bootstrap.stores import detection_store
from roadwatch.errors import ConfigurationError
from roadwatch.kafka.clients import kafka_options
from roadwatch.prometheus import served_registry
from roadwatch.settings import Settings
from roadwatch.stores.users_postgres import PostgresUserStore
from roadwatch.stores.watchlists_postgres import PostgresWatchlistStore
from roadwatch.stores.webhooks_postgres import PostgresWebhookStore
from roadwatch.watchlists.registry import Watchlists
from roadwatch.watchlists.rules import Rule, seed_rule
from roadwatch.watchlists.topic import RulePublisher, read_rules
from roadwatch.webhooks.registry import WebhookRegistry

log = logging.getLogger(__name__)


def token_secret(settings: Settings) -> str:
    """The JWT signing key: required, and strong, in production; generated in development."""
    secret = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
    weakness = None if secret is None else key_weakness(secret)
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


async def awaiting_first_user(settings: Settings, *, patience: float = 60.0) -> bool:
    """Whether the system has no user yet (its schema brought up to date first)."""
    users = PostgresUserStore(settings.users_db_url)
    await open_within(patience, "opening the user store", users.open)
    try:
        return not await users.has_users()
    finally:
        await users.close()


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
        resources = Resources(stack, patience=patience)
        timeout = settings.api_query_timeout
        detections = await resources.opened(
            detection_store(settings.detections_db_url, query_timeout=timeout),
            "opening the detection store",
        )
        users = await resources.opened(
            PostgresUserStore(settings.users_db_url, query_timeout=timeout),
            "opening the user store",
        )
        await kafka_checked(settings, topics=api_topics(settings), patience=patience)
        watchlists = await _opened_watchlists(settings, resources)
        webhook_store = await resources.opened(
            PostgresWebhookStore(settings.users_db_url, query_timeout=timeout),
            "opening the webhook store",
        )

        async def rule_exists(rule_id: UUID) -> bool:
            return await watchlists.get(rule_id) is not None

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
            resume_window=settings.alerts_resume_window,
        )
        await resources.started(feed, "following the alerts topic")
        yield ApiServices(
            detections=detections,
            users=users,
            recent_users=RecentUsers(users),
            alerts=feed,
            streams=StreamSlots(
                per_user=settings.alert_streams_per_user,
                total=settings.alert_streams_total or streams_the_process_can_hold(),
                changed=metrics.alert_streams.set,
            ),
            passwords=Passwords(),
            tokens=tokens,
            setup=SetupState(
                users,
                token=settings.setup_token.get_secret_value() if settings.setup_token else None,
            ),
            login_throttle=LoginThrottle.from_uri(
                settings.login_throttle_storage,
                ThrottleRules(
                    per_address=settings.login_attempts_per_address,
                    per_network=settings.login_attempts_per_network,
                ),
                processes=processes,
            ),
            metrics=metrics,
            watchlists=watchlists,
            webhooks=webhooks,
        )


async def _opened_watchlists(settings: Settings, resources: Resources) -> Watchlists:
    """The API's watchlists, their topic brought in line with the database."""
    store = await resources.opened(
        PostgresWatchlistStore(settings.users_db_url, query_timeout=settings.api_query_timeout),
        "opening the watchlist store",
    )
    producer = await resources.started(kafka_producer(settings, linger_ms=0), "connecting to Kafka")

    async def published() -> dict[UUID, Rule]:
        return (await read_rules(rules_consumer(settings), settings.watchlists_topic)).rules

    watchlists = Watchlists(
        store, RulePublisher(producer, topic=settings.watchlists_topic), published=published
    )
    seed = seed_rule(settings.suspicious_vehicle)
    await resources.ready("publishing the watchlists", lambda: _reconciled(watchlists, seed))
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
