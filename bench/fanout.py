"""Many /alerts clients on one API process: does every client get every alert, and how soon?"""

import asyncio
import statistics
import time
import uuid
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from bench.sse_client import alert_payloads
from bench.stack import Bench, peak_rss_mb, running_api

# Alerts name the rules they matched; the feed passes on nothing else.
RULE_ID = uuid.uuid4()


async def measure(bench: Bench, *, clients: int, alerts: int) -> dict[str, Any]:
    async with bench.postgres_database() as url:
        settings = await bench.settings_for(store_url=url, users_url=url)
        # One token stands for every screen here: the cap on a user's streams would
        # refuse all but ten of them (429), which is the fairness rule, not what is measured.
        settings = settings.model_copy(update={"alert_streams_per_user": clients})
        async with running_api("fanout-api", settings) as api:
            received, latencies = await _fan_out(api.url, api.token, settings, clients, alerts)
            memory = peak_rss_mb(api.process)
    latencies.sort()
    return {
        "clients": clients,
        "alerts": alerts,
        "clients_with_every_alert": sum(1 for count in received if count == alerts),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1),
        "max_ms": round(latencies[-1], 1),
        "api_peak_rss_mb": round(memory, 1),
    }


async def _fan_out(
    base: str, token: str, settings: Any, clients: int, alerts: int
) -> tuple[list[int], list[float]]:
    received = [0] * clients
    latencies: list[float] = []
    connected = 0
    all_connected = asyncio.Event()
    limits = httpx.Limits(max_connections=clients + 10)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=base, limits=limits, timeout=httpx.Timeout(30, read=None), headers=headers
    ) as http:

        async def follow(index: int) -> None:
            nonlocal connected
            async with http.stream("GET", "/alerts") as response:
                connected += 1
                if connected == clients:
                    all_connected.set()
                async for data in alert_payloads(response):
                    latencies.append((time.time_ns() - int(orjson.loads(data)["model"])) / 1e6)
                    received[index] += 1
                    if received[index] == alerts:
                        return

        followers = [asyncio.create_task(follow(i)) for i in range(clients)]
        await asyncio.wait_for(all_connected.wait(), timeout=60)
        await asyncio.sleep(1)
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_broker_url, linger_ms=0)
        await producer.start()
        try:
            for _ in range(alerts):
                alert = {
                    "id": str(uuid.uuid4()),
                    "timestamp": "2026-01-01T00:00:00.000+00:00",
                    "year": 2020,
                    "make": "Jeep",
                    "model": str(time.time_ns()),
                    "category": "SUV",
                    "rules": [{"id": str(RULE_ID), "name": "bench"}],
                }
                await producer.send_and_wait(settings.alerts_topic, orjson.dumps(alert))
                await asyncio.sleep(0.1)
        finally:
            await producer.stop()
        await asyncio.wait(followers, timeout=30)
        for task in followers:
            task.cancel()
    return received, latencies
