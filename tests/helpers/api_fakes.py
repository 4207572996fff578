"""The API's app over in-memory fakes: route logic tested without servers. The fakes are
held to the real stores' contracts by tests/contract/."""

import builtins
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from uuid import UUID

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from roadwatch.api.alerts_feed import AlertEvent
from roadwatch.api.app import create_app
from roadwatch.api.login_throttle import LoginThrottle
from roadwatch.api.metrics import ApiMetrics
from roadwatch.api.recent_users import RecentUsers
from roadwatch.api.security import Passwords, Tokens
from roadwatch.api.services import ApiServices
from roadwatch.api.setup_state import SetupState
from roadwatch.api.stream_slots import StreamSlots
from roadwatch.stores.detection_store import DetectionStore
from roadwatch.watchlists.registry import Watchlists
from roadwatch.watchlists.rules import Rule
from roadwatch.webhooks.registry import WebhookRegistry
from roadwatch.webhooks.targets import TargetPolicy
from tests.helpers.user_fake import InMemoryUserStore
from tests.helpers.watchlist_fake import InMemoryWatchlistStore
from tests.helpers.webhook_fake import InMemoryWebhookStore

SETUP_TOKEN = "setup-token-for-the-route-tests"
SIGNING_KEY = "k" * 64


def _unused(*_args: object, **_kwargs: object) -> builtins.object:
    raise AssertionError("these route tests do not read detections")


# Route tests of users, tokens, watchlists and webhooks touch no detection; one that did
# would fail here, loudly.
NoDetections = type(
    "NoDetections", (DetectionStore,), dict.fromkeys(DetectionStore.__abstractmethods__, _unused)
)


@dataclass
class RuleTopic:
    """The watchlists topic: what was published, in order."""

    sent: list[tuple[str, UUID]] = field(default_factory=list)

    async def put(self, rule: Rule) -> None:
        self.sent.append(("put", rule.id))

    async def remove(self, rule_id: UUID) -> None:
        self.sent.append(("remove", rule_id))


class QuietFeed:
    """An alert feed with nothing published."""

    async def ping(self) -> None:
        pass

    async def events(
        self, last_event_id: str | None = None, *, rule: str | None = None
    ) -> AsyncIterator[AlertEvent]:
        return
        yield


@dataclass
class FakeApi:
    client: httpx.AsyncClient
    users: InMemoryUserStore
    rules: InMemoryWatchlistStore
    topic: RuleTopic
    webhooks: InMemoryWebhookStore


def services_over_fakes(
    users: InMemoryUserStore,
    rules: InMemoryWatchlistStore,
    topic: RuleTopic,
    webhooks: InMemoryWebhookStore,
    metrics: ApiMetrics,
) -> ApiServices:
    watchlists = Watchlists(rules, topic, published=_nothing_published)

    async def rule_exists(rule_id: UUID) -> bool:
        return await rules.get(rule_id) is not None

    return ApiServices(
        detections=NoDetections(),
        users=users,
        recent_users=RecentUsers(users),
        alerts=QuietFeed(),
        streams=StreamSlots(per_user=2, total=4),
        passwords=Passwords(),
        tokens=Tokens(SIGNING_KEY),
        login_throttle=LoginThrottle.from_uri("async+memory://"),
        setup=SetupState(users, token=SETUP_TOKEN),
        metrics=metrics,
        watchlists=watchlists,
        webhooks=WebhookRegistry(
            webhooks, policy=TargetPolicy(), rule_exists=rule_exists, secret_overlap=60.0
        ),
    )


async def _nothing_published() -> dict[UUID, Rule]:
    return {}


@asynccontextmanager
async def fake_api() -> AsyncIterator[FakeApi]:
    """The whole app, its middleware and error handlers included, over fresh fakes."""
    fakes = (InMemoryUserStore(), InMemoryWatchlistStore(), RuleTopic(), InMemoryWebhookStore())
    registry = CollectorRegistry()
    metrics = ApiMetrics(registry)

    @asynccontextmanager
    async def opened() -> AsyncIterator[ApiServices]:
        yield services_over_fakes(*fakes, metrics)

    app: FastAPI = create_app(opened, registry=registry, metrics=metrics)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api.test"
        ) as client,
    ):
        yield FakeApi(client, *fakes)
