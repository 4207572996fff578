"""The API's latency with a million detections stored, and its throughput under 50 clients."""

import asyncio
import random
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.stack import Bench, running_api
from roadwatch.api.cursors import encode_cursor
from roadwatch.bootstrap import detection_store
from roadwatch.catalog.vehicles import load_catalog
from roadwatch.domain import Detection, Source
from roadwatch.stores.base import Position

BATCH = 10_000


async def fill(url: str, count: int) -> float:
    """Store `count` detections spread over 30 days; the rate at which the store took them."""
    store = detection_store(url)
    await store.open()
    rng = random.Random(3)
    catalog = load_catalog()
    start_time = datetime(2026, 1, 1, tzinfo=UTC)
    began = time.perf_counter()
    try:
        for first in range(0, count, BATCH):
            batch = []
            for offset in range(first, min(first + BATCH, count)):
                vehicle = rng.choice(catalog)
                batch.append(
                    Detection(
                        id=uuid.UUID(int=rng.getrandbits(128), version=4),
                        timestamp=start_time + timedelta(milliseconds=offset * 2592),
                        year=vehicle.year,
                        make=vehicle.make,
                        model=vehicle.model,
                        category=vehicle.category,
                        source=Source("bench", 0, offset),
                    )
                )
            await store.save(batch)
    finally:
        await store.close()
    return count / (time.perf_counter() - began)


async def _latencies(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], n: int
) -> dict[str, float]:
    timings = []
    for _ in range(n):
        started = time.perf_counter()
        response = await client.get(path, params=params)
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    timings.sort()
    return {
        "p50_ms": round(statistics.median(timings), 2),
        "p99_ms": round(timings[int(n * 0.99) - 1], 2),
    }


async def _throughput(url: str, headers: dict[str, str], *, clients: int, seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=30
    ) as client:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                (await client.get("/detections", params={"limit": 50})).raise_for_status()
                done += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return done / (time.perf_counter() - began)


async def measure(bench: Bench, *, count: int, depth: int, samples: int) -> dict[str, Any]:
    async with bench.postgres_database() as url:
        fill_rate = await fill(url, count)
        store = detection_store(url)
        await store.open()
        deep = (await store.list(skip=depth - 1, limit=1))[0]
        await store.close()
        settings = await bench.settings_for(store_url=url, users_url=url)
        async with running_api("scale-api", settings) as api:
            headers = {"Authorization": f"Bearer {api.token}"}
            async with httpx.AsyncClient(base_url=api.url, timeout=60, headers=headers) as client:
                cursor = encode_cursor(Position(deep.timestamp, deep.id))
                result = {
                    "detections": count,
                    "fill_per_second": round(fill_rate),
                    "stats": await _latencies(client, "/stats", {}, samples),
                    "first_page": await _latencies(client, "/detections", {"limit": 50}, samples),
                    f"skip_{depth}": await _latencies(
                        client, "/detections", {"limit": 50, "skip": depth}, max(samples // 10, 10)
                    ),
                    f"cursor_at_{depth}": await _latencies(
                        client, "/detections", {"limit": 50, "cursor": cursor}, samples
                    ),
                }
            result["first_page_rps_50_clients"] = round(
                await _throughput(api.url, headers, clients=50, seconds=10)
            )
    return result
