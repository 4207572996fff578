"""Asks every part of the system how it goes, at once, and makes one Snapshot of it."""

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp

from roadwatch.kafka.activity import Activity, Letters
from roadwatch.kafka.topics import DELIVER_GROUP, INDEXER_GROUP
from roadwatch.kafka.types import KafkaError
from roadwatch.server_checks import server_states
from roadwatch.settings import Settings
from roadwatch.status.scrape import Answer, Samples, ask
from roadwatch.status.snapshot import Part, Snapshot, WebhookHealth
from roadwatch.text import printable

SERVERS_WITHIN = 3.0
STORED = "roadwatch_detections_stored_total"
ATTEMPTS = "roadwatch_webhook_deliveries_total"

T = TypeVar("T")


@dataclass(frozen=True)
class Endpoints:
    """Where each process serves /readyz and /metrics."""

    api: str
    indexer: str
    deliver: str

    @classmethod
    def local(cls, *, api: int, indexer: int, deliver: int) -> "Endpoints":
        return cls(*(f"http://127.0.0.1:{port}" for port in (api, indexer, deliver)))


@dataclass(frozen=True)
class _Broker:
    lag: dict[str, int | None]
    alerts_last_minute: int | None
    letters: dict[str, Letters]


async def snapshot(
    settings: Settings, endpoints: Endpoints, kafka: dict[str, Any], *, window: float = 2.0
) -> Snapshot:
    """The system now; rates are measured over `window` seconds."""
    processes = {"api": endpoints.api, "indexer": endpoints.indexer, "deliver": endpoints.deliver}
    unknown: dict[str, str] = {}
    async with aiohttp.ClientSession() as session:
        servers_asked = asyncio.create_task(server_states(settings, within=SERVERS_WITHIN))
        broker_asked: asyncio.Task[_Broker] | None = None
        try:
            async with Activity(kafka) as activity:
                first, published_before = await _sample(session, processes, activity, settings)
                started = time.monotonic()
                broker_asked = asyncio.create_task(_broker(activity, settings, unknown))
                await asyncio.sleep(window)
                last, published_after = await _sample(session, processes, activity, settings)
                elapsed = time.monotonic() - started
                broker: _Broker | None = await broker_asked
        except (KafkaError, OSError) as error:
            if broker_asked is not None:
                # Its client is closed: what it would say is lost with the broker.
                broker_asked.cancel()
                await asyncio.gather(broker_asked, return_exceptions=True)
            unknown["broker"] = _said(error)
            first = last = await _asked(session, processes)
            published_before = published_after = elapsed = 0
            broker = None
        servers = await servers_asked
    return Snapshot(
        servers=[Part(name, "", problem is None, problem) for name, problem in servers.items()],
        processes=[
            Part(name, f"{base}/readyz", last[name].ready, last[name].problem)
            for name, base in processes.items()
        ],
        lag=broker.lag if broker else {},
        published_per_second=(published_after - published_before) / elapsed if elapsed else None,
        stored_per_second=stored_rate(first["indexer"].samples, last["indexer"].samples, elapsed),
        alerts_last_minute=broker.alerts_last_minute if broker else None,
        dead_letters_last_hour={
            topic: dict(letters.reasons.most_common())
            for topic, letters in (broker.letters.items() if broker else ())
        },
        dead_letters_counted_in_part=[
            topic for topic, letters in (broker.letters.items() if broker else ()) if letters.more
        ],
        webhooks=webhook_health(first["deliver"].samples, last["deliver"].samples),
        unknown=unknown,
    )


async def _asked(session: aiohttp.ClientSession, processes: dict[str, str]) -> dict[str, Answer]:
    answers = await asyncio.gather(*(ask(session, base) for base in processes.values()))
    return dict(zip(processes, answers, strict=True))


async def _sample(
    session: aiohttp.ClientSession,
    processes: dict[str, str],
    activity: Activity,
    settings: Settings,
) -> tuple[dict[str, Answer], int]:
    answers, published = await asyncio.gather(
        _asked(session, processes), activity.end_total(settings.detections_topic)
    )
    return answers, published


async def _broker(activity: Activity, settings: Settings, unknown: dict[str, str]) -> _Broker:
    """What the broker says; what it refuses to say (an ACL) is named in `unknown`."""

    async def asked(what: str, question: Awaitable[T]) -> T | None:
        try:
            return await question
        except KafkaError as error:
            unknown[what] = _said(error)
            return None

    groups = {INDEXER_GROUP: settings.detections_topic, DELIVER_GROUP: settings.alerts_topic}
    lag = {
        group: await asked(f"lag of {group}", activity.lag(group, [topic]))
        for group, topic in groups.items()
    }
    read = await asked("alerts", activity.records_since(settings.alerts_topic, 60))
    alerts = None if read is None else read.reasons["records"]
    letters: dict[str, Letters] = {}
    for topic in (settings.dead_letter_topic, settings.webhooks_dead_letter_topic):
        found = await asked(f"dead letters on {topic}", activity.letters_since(topic, 3600))
        if found is not None:
            letters[topic] = found
    return _Broker(lag, alerts, letters)


def _said(error: Exception) -> str:
    return printable(f"{type(error).__name__}: {error}", limit=200)


def stored_rate(before: Samples | None, after: Samples | None, elapsed: float) -> float | None:
    if before is None or after is None or not elapsed:
        return None
    first, last = before.total(STORED), after.total(STORED)
    if first is None or last is None:
        return None
    return max(last - first, 0.0) / elapsed


def webhook_health(before: Samples | None, after: Samples | None) -> WebhookHealth | None:
    if after is None:
        return None
    earlier = before.by_label(ATTEMPTS, "result") if before else {}
    attempts = {
        result: count - earlier.get(result, 0.0)
        for result, count in after.by_label(ATTEMPTS, "result").items()
    }
    return WebhookHealth(
        subscriptions=int(after.total("roadwatch_webhook_subscriptions") or 0),
        retry_queue=int(after.total("roadwatch_webhook_retry_queue_depth") or 0),
        oldest_pending_seconds=after.total("roadwatch_webhook_oldest_pending_seconds") or 0.0,
        attempts=attempts,
    )
