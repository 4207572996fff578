from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from roadwatch.api.alerts_feed import AlertEvent
from roadwatch.api.login_throttle import LoginThrottle
from roadwatch.api.metrics import ApiMetrics
from roadwatch.api.recent_users import RecentUsers
from roadwatch.api.security import Passwords, Tokens
from roadwatch.api.setup_state import SetupState
from roadwatch.api.stream_slots import StreamSlots
from roadwatch.stores.detection_store import DetectionStore
from roadwatch.stores.users import UserStore
from roadwatch.watchlists.registry import Watchlists
from roadwatch.webhooks.registry import WebhookRegistry


class AlertFeed(Protocol):
    """The alerts as they are published, and the recent ones a client missed."""

    async def ping(self) -> None: ...

    def events(
        self, last_event_id: str | None = None, *, rule: str | None = None
    ) -> AsyncIterator[AlertEvent]: ...


@dataclass(frozen=True)
class ApiServices:
    """What the routes work with, built once per process by bootstrap."""

    detections: DetectionStore
    users: UserStore
    # What authenticating a request reads users through.
    recent_users: RecentUsers
    alerts: AlertFeed
    streams: StreamSlots
    passwords: Passwords
    tokens: Tokens
    login_throttle: LoginThrottle
    setup: SetupState
    metrics: ApiMetrics
    watchlists: Watchlists
    webhooks: WebhookRegistry
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
