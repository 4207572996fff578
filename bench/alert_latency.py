"""From a suspicious detection's send to its alert's arrival on an /alerts stream, under load,
and where that time goes, hop by hop, from moments seen outside the processes:

- `to broker`: the send until the broker acknowledged it (acks=all);
- `indexer`: the acknowledgement until the indexer produced the alert (the alert record's
  own timestamp): its fetch of the record, the batch's store write, the alert step;
- `alerts topic`: the alert produced until a plain consumer of the topic got it;
- `API and SSE`: that consumer's receipt until the /alerts client's. The API's own consumer
  fetches beside the plain one, so this is the API's feed and SSE write, and the difference
  between two fetches (it can be below zero).
"""

import asyncio
import random
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from tests.helpers.metrics import samples
from tests.helpers.ports import free_port
from tests.helpers.servers import unique

from bench.sse_client import alert_payloads
from bench.stack import Bench, running_api, start, stop
from roadwatch.catalog.producer import DetectionProducer
from roadwatch.catalog.vehicles import load_catalog


async def measure(
    bench: Bench, *, alerts: int, background_rate: float, exactly_once: bool = True
) -> dict[str, Any]:
    async with bench.postgres_database() as url:
        settings = await bench.settings_for(store_url=url, users_url=url)
        settings = settings.model_copy(update={"alerts_exactly_once": exactly_once})
        metrics_port = free_port()
        arguments = ["indexer", "--group", unique("bench"), "--metrics-port", str(metrics_port)]
        indexer = start("latency-indexer", arguments, settings)
        try:
            async with (
                running_api("latency-api", settings) as api,
                httpx.AsyncClient(base_url=api.url, timeout=httpx.Timeout(10, read=None)) as client,
            ):
                moments = await _follow(client, api.token, settings, alerts, background_rate)
                page = await client.get(f"http://127.0.0.1:{metrics_port}/metrics")
                writes = _histogram_quantiles(page.text, "roadwatch_store_write_seconds")
        finally:
            stop(indexer)
    whole = _spread([m.arrived - m.sent for m in moments.values() if m.arrived])
    hops = {
        name: _spread([later - earlier for earlier, later in pairs if earlier and later])
        for name, pairs in {
            "to broker": [(m.sent, m.acked) for m in moments.values()],
            "indexer": [(m.acked, m.alert_produced) for m in moments.values()],
            "alerts topic": [(m.alert_produced, m.consumed) for m in moments.values()],
            "API and SSE": [(m.consumed, m.arrived) for m in moments.values()],
        }.items()
    }
    return {
        "alerts": alerts,
        "received": whole["count"],
        "background_per_second": background_rate,
        "p50_ms": whole["p50_ms"],
        "p99_ms": whole["p99_ms"],
        "max_ms": whole["max_ms"],
        "hops": hops,
        "store_write_at_most_ms": writes,
    }


def _histogram_quantiles(page: str, name: str) -> dict[str, float]:
    """The p50 and p99 of a Prometheus histogram, as the upper bounds of their buckets."""
    buckets = sorted(
        (float(dict(labels)["le"]), count)
        for (sample, labels), count in samples(page).items()
        if sample == f"{name}_bucket"
    )
    total = buckets[-1][1]
    return {
        f"p{q}": next(bound for bound, count in buckets if count >= total * q / 100) * 1000
        for q in (50, 99)
    }


@dataclass
class Moments:
    """When one alert's detection passed each point, in seconds since the epoch; 0 if not."""

    sent: float
    acked: float = 0
    alert_produced: float = 0
    consumed: float = 0
    arrived: float = 0


def _spread(seconds: list[float]) -> dict[str, Any]:
    ordered = sorted(seconds)
    if not ordered:
        return {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    return {
        "count": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[max(int(len(ordered) * 0.99) - 1, 0)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


async def _follow(
    client: httpx.AsyncClient, token: str, settings: Any, alerts: int, background_rate: float
) -> dict[str, Moments]:
    moments: dict[str, Moments] = {}
    done = asyncio.Event()

    async def listen() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with client.stream("GET", "/alerts", headers=headers) as response:
            arrived = 0
            async for data in alert_payloads(response):
                model = orjson.loads(data)["model"]
                if model in moments:
                    moments[model].arrived = time.time()
                    arrived += 1
                    if arrived == alerts:
                        done.set()
                        return

    async def watch_topic(consumer: AIOKafkaConsumer) -> None:
        async for record in consumer:
            model = orjson.loads(record.value or b"{}").get("model")
            if model in moments:
                moments[model].consumed = time.time()
                moments[model].alert_produced = record.timestamp / 1000

    async def acknowledged(model: str, sent: asyncio.Future[Any]) -> None:
        await sent
        moments[model].acked = time.time()

    listener = asyncio.create_task(listen())
    watcher = AIOKafkaConsumer(
        settings.alerts_topic,
        bootstrap_servers=settings.kafka_broker_url,
        auto_offset_reset="latest",
    )
    await watcher.start()
    watching = asyncio.create_task(watch_topic(watcher))
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
    acks = []
    try:
        await asyncio.sleep(2)
        for n in range(alerts):
            model = f"latency-{n}"
            message = {"Year": 2020, "Make": "Jeep", "Model": model, "Category": "SUV"}
            moments[model] = Moments(sent=time.time())
            sent = await producer.send(settings.detections_topic, orjson.dumps(message))
            acks.append(asyncio.create_task(acknowledged(model, sent)))
            await asyncio.sleep(0.1)
        await asyncio.wait_for(done.wait(), timeout=60)
        await asyncio.gather(*acks)
    finally:
        stop_background.set()
        await background
        await producer.stop()
        listener.cancel()
        watching.cancel()
        await watcher.stop()
    return moments
