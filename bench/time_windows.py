"""Questions in time at 10,000,000 detections over 30 days (PostgreSQL): counts over a
window, timelines, a window's first page, and how long removing a day takes."""

import asyncio
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import httpx

from bench.api_scale import analyzed, latencies, random_detection
from bench.stack import Bench, running_api
from roadwatch.bootstrap.stores import detection_store
from roadwatch.catalog.vehicles import load_catalog
from roadwatch.domain import Alert, Detection, RuleRef, Source
from roadwatch.stores import postgres_days
from roadwatch.stores.detection_store import DetectionStore

T = TypeVar("T")

BATCH = 5000
DAYS = 30
START = datetime(2026, 1, 1, tzinfo=UTC)
RULE = RuleRef(uuid.UUID(int=1, version=4), "one in ten")


async def fill(store: DetectionStore, count: int) -> float:
    """`count` detections evenly over DAYS days, in time order as a live stream brings them,
    one in ten with an alert, saved by the store's batch path two batches at once; the rate."""
    rng = random.Random(16)
    catalog = load_catalog()
    step = timedelta(days=DAYS) / count
    began = time.perf_counter()
    pending: list[asyncio.Task[None]] = []

    async def save(batch: list[Detection]) -> None:
        await store.save(batch)
        await store.save_alerts([Alert(d, (RULE,)) for d in batch[::10]])

    for first in range(0, count, BATCH):
        batch = []
        for offset in range(first, min(first + BATCH, count)):
            source = Source("bench", offset % 6, offset)
            batch.append(random_detection(rng, catalog, at=START + step * offset, source=source))
        pending.append(asyncio.create_task(save(batch)))
        if len(pending) == 2:
            await pending.pop(0)
    await asyncio.gather(*pending)
    return count / (time.perf_counter() - began)


def _z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _requests() -> dict[str, tuple[str, dict[str, Any]]]:
    hour = START + timedelta(days=15, hours=10)
    day = START + timedelta(days=15)
    one_hour = {"since": _z(hour), "until": _z(hour + timedelta(hours=1))}
    return {
        "stats, one hour": ("/stats", one_hour),
        "stats, one hour off the hour": (
            "/stats",
            {
                "since": _z(hour + timedelta(minutes=17)),
                "until": _z(hour + timedelta(hours=1, minutes=17)),
            },
        ),
        "stats, 30 days": (
            "/stats",
            {"since": _z(START), "until": _z(START + timedelta(days=DAYS))},
        ),
        "stats, all time": ("/stats", {}),
        "timeline, a day by hour": (
            "/stats/timeline",
            {"bucket": "hour", "since": _z(day), "until": _z(day + timedelta(days=1))},
        ),
        "timeline, 30 days by day, by category": (
            "/stats/timeline",
            {
                "bucket": "day",
                "by": "category",
                "since": _z(START),
                "until": _z(START + timedelta(days=DAYS)),
            },
        ),
        "detections, first page of one hour": ("/detections", {**one_hour, "limit": 50}),
        "detections, first page": ("/detections", {"limit": 50}),
    }


async def _in_connection(
    url: str, step: Callable[[asyncpg.Connection, date], Awaitable[T]], day: date
) -> T:
    connection = await asyncpg.connect(url)
    try:
        return await step(connection, day)
    finally:
        await connection.close()


async def _while_reading(client: httpx.AsyncClient, work: Awaitable[T]) -> tuple[T, float]:
    """Run `work` while /stats of one hour is asked, one request after another; the work's
    result and the slowest answer (ms): how long readers waited on it."""
    done = asyncio.Event()
    path, params = _requests()["stats, one hour"]
    slowest = 0.0

    async def read() -> None:
        nonlocal slowest
        while not done.is_set():
            started = time.perf_counter()
            (await client.get(path, params=params)).raise_for_status()
            slowest = max(slowest, (time.perf_counter() - started) * 1000)

    reader = asyncio.create_task(read())
    try:
        result = await work
    finally:
        done.set()
        await reader
    return result, slowest


async def measure(bench: Bench, *, count: int, samples: int) -> dict[str, Any]:
    async with bench.postgres_database() as url:
        store = detection_store(url)
        await store.open()
        try:
            result: dict[str, Any] = {
                "detections": count,
                "days": DAYS,
                "fill_per_second": round(await fill(store, count)),
            }
            await analyzed(url)
            settings = await bench.settings_for(store_url=url, users_url=url)
            async with running_api("time-windows-api", settings) as api:
                headers = {"Authorization": f"Bearer {api.token}"}
                async with httpx.AsyncClient(
                    base_url=api.url, timeout=60, headers=headers
                ) as client:
                    result["requests"] = {
                        name: {"path": path, **await latencies(client, path, params, samples)}
                        for name, (path, params) in _requests().items()
                    }
                    # The store's two steps, each timed: as drop_days_before runs them.
                    day = START.date()
                    began = time.perf_counter()
                    released, slowest_release = await _while_reading(
                        client, _in_connection(url, postgres_days.release_ids, day)
                    )
                    result["release_ids_seconds"] = round(time.perf_counter() - began, 3)
                    began = time.perf_counter()
                    _, slowest_drop = await _while_reading(
                        client, _in_connection(url, postgres_days.drop_released_day, day)
                    )
                    result["drop_one_day_seconds"] = round(time.perf_counter() - began, 3)
                    result["slowest_stats_during_release_ms"] = round(slowest_release, 1)
                    result["slowest_stats_during_drop_ms"] = round(slowest_drop, 1)
            result["ids_released"] = released
            result["stats_exact_after_drop"] = (
                await store.count_by_make() == await store.group_by_make()
            )
        finally:
            await store.close()
    return result
