"""From a suspicious detection's send to its alert's arrival on an /alerts stream, under load."""

import asyncio
import random
import statistics
import time
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from tests.helpers.servers import unique

from bench.sse_client import alert_payloads
from bench.stack import Bench, running_api, start, stop
from roadwatch.catalog.producer import DetectionProducer
from roadwatch.catalog.vehicles import load_catalog


async def measure(bench: Bench, *, alerts: int, background_rate: float) -> dict[str, Any]:
    async with bench.postgres_database() as url:
        settings = await bench.settings_for(store_url=url, users_url=url)
        indexer = start("latency-indexer", ["indexer", "--group", unique("bench")], settings)
        try:
            async with (
                running_api("latency-api", settings) as api,
                httpx.AsyncClient(base_url=api.url, timeout=httpx.Timeout(10, read=None)) as client,
            ):
                latencies = await _follow(client, api.token, settings, alerts, background_rate)
        finally:
            stop(indexer)
    ordered = sorted(latencies)
    return {
        "alerts": alerts,
        "received": len(latencies),
        "background_per_second": background_rate,
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[int(len(ordered) * 0.99) - 1], 1),
        "max_ms": round(ordered[-1], 1),
    }


async def _follow(
    client: httpx.AsyncClient, token: str, settings: Any, alerts: int, background_rate: float
) -> list[float]:
    latencies: list[float] = []
    done = asyncio.Event()

    async def listen() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with client.stream("GET", "/alerts", headers=headers) as response:
            async for data in alert_payloads(response):
                model = orjson.loads(data)["model"]
                if model.startswith("latency-"):
                    latencies.append((time.time_ns() - int(model[8:])) / 1e6)
                    if len(latencies) == alerts:
                        done.set()
                        return

    listener = asyncio.create_task(listen())
    await asyncio.sleep(1)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_broker_url, linger_ms=5, acks="all"
    )
    await producer.start()
    stop_background = asyncio.Event()
    sedans = [v for v in load_catalog() if "suv" not in v.category.lower()]
    background = asyncio.create_task(
        DetectionProducer(
            producer, topic=settings.detections_topic, vehicles=sedans, rng=random.Random(2)
        ).run(rate=background_rate, count=None, stop=stop_background)
    )
    try:
        await asyncio.sleep(2)
        for _ in range(alerts):
            message = {
                "Year": 2020,
                "Make": "Jeep",
                "Model": f"latency-{time.time_ns()}",
                "Category": "SUV",
            }
            await producer.send(settings.detections_topic, orjson.dumps(message))
            await asyncio.sleep(0.1)
        await asyncio.wait_for(done.wait(), timeout=60)
    finally:
        stop_background.set()
        await background
        await producer.stop()
        listener.cancel()
    return latencies
