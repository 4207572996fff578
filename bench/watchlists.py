"""Watchlists: the indexer's rate with 1 rule and with 10,000, and how soon a rule added
through the API raises its first alert."""

import asyncio
import random
import statistics
import time
import uuid
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from tests.helpers.servers import unique

from bench.indexer_throughput import indexer_rate, summary
from bench.sse_client import alert_payloads
from bench.stack import Bench, preloaded, running_api, start, stop
from roadwatch.catalog.producer import DetectionProducer
from roadwatch.catalog.vehicles import Vehicle, load_catalog
from roadwatch.domain import Detection, Source
from roadwatch.parsing import parse_detection
from roadwatch.settings import Settings
from roadwatch.watchlists.matching import RuleIndex
from roadwatch.watchlists.rules import Rule, seed_rule
from roadwatch.watchlists.topic import RulePublisher

PROBE = Vehicle(1988, "Zastava", "Yugo", "Hatchback")


def mixed_rules(count: int, catalog: tuple[Vehicle, ...], rng: random.Random) -> list[Rule]:
    """The seed rule and `count - 1` more, setting fields in the mixes operators use. Like a
    real hot list, most name vehicles that the stream does not carry, and 1 in 200 a vehicle
    it does: the alerts raised stay about as many as with the seed rule alone, so that what
    the rules cost is their matching."""
    rules = [seed_rule("SUV")]
    while len(rules) < count:
        low = rng.randint(1990, 2020)
        fields: dict[str, Any]
        if rng.random() < 0.005:
            # A wanted vehicle the stream does carry: its make, model and year.
            vehicle = rng.choice(catalog)
            fields = {
                "make": vehicle.make,
                "model": vehicle.model,
                "year_from": vehicle.year,
                "year_to": vehicle.year,
            }
            rules.append(Rule(id=uuid.uuid4(), name=f"rule-{len(rules)}", **fields))
            continue
        make, model = f"Make {rng.randrange(2_000)}", f"Model {rng.randrange(20_000)}"
        category = f"Category {rng.randrange(50)}"
        shape = rng.random()
        if shape < 0.40:
            fields = {"make": make, "model": model}
        elif shape < 0.65:
            fields = {"make": make, "model": model, "year_from": low}
        elif shape < 0.80:
            fields = {"make": make, "year_from": low, "year_to": low + 2}
        elif shape < 0.90:
            fields = {"categories": (category,), "make": make}
        elif shape < 0.95:
            fields = {"model": model, "year_to": low}
        else:
            fields = {"categories": (category,), "year_from": low}
        rules.append(Rule(id=uuid.uuid4(), name=f"rule-{len(rules)}", **fields))
    return rules


async def publish_rules(bootstrap: str, topic: str, rules: list[Rule]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        publisher = RulePublisher(producer, topic=topic)
        await asyncio.gather(*(publisher.put(rule) for rule in rules))
    finally:
        await producer.stop()


async def throughput(
    bench: Bench, *, count: int, runs: int, rule_counts: tuple[int, ...]
) -> dict[str, Any]:
    """The indexer's rate into PostgreSQL with each number of rules, runs interleaved."""
    base, messages = await preloaded(bench, count, seed=3)
    catalog = load_catalog()
    rule_sets = {n: mixed_rules(n, catalog, random.Random(n)) for n in rule_counts}
    topics = {}
    for n, rules in rule_sets.items():
        topics[n] = await bench.topic(1, {"cleanup.policy": "compact"})
        await publish_rules(bench.kafka, topics[n], rules)
    rates: dict[int, list[float]] = {n: [] for n in rule_counts}
    for _ in range(runs):
        for n in rule_counts:
            async with bench.postgres_database() as url:
                settings = base.model_copy(
                    update={"detections_db_url": url, "watchlists_topic": topics[n]}
                )
                rates[n].append((await indexer_rate(settings, count)).per_second)
    result: dict[str, Any] = {"detections": count}
    fewest = statistics.median(rates[min(rule_counts)])
    detections = [_as_detection(message) for message in messages[:20_000]]
    vehicles = list({(d.category, d.make, d.model, d.year): d for d in detections}.values())
    for n in rule_counts:
        index = RuleIndex(rule_sets[n])
        alerting = sum(bool(index.matches(d)) for d in detections) / len(detections)
        # Matching alone, each vehicle met for the first time (nothing remembered yet).
        cold = RuleIndex(rule_sets[n])
        began = time.perf_counter()
        for vehicle in vehicles:
            cold.matches(vehicle)
        matching_us = (time.perf_counter() - began) / len(vehicles) * 1e6
        result[f"rules_{n}"] = {
            "per_second": summary(rates[n]),
            "ratio_to_fewest_rules": round(statistics.median(rates[n]) / fewest, 2),
            "alerting_share": round(alerting, 3),
            "match_us_per_new_vehicle": round(matching_us, 1),
        }
    return result


def _as_detection(message: bytes) -> Detection:
    return parse_detection(message, source=Source("bench", 0, 0), timestamp_ms=1_700_000_000_000)


async def rule_to_first_alert(bench: Bench, *, trials: int, rate: float) -> dict[str, Any]:
    """From `POST /watchlists` to the first alert under the new rule on an /alerts stream,
    while detections flow at `rate`/s, a tenth of them vehicles the new rules match."""
    async with bench.postgres_database() as url:
        settings = await bench.settings_for(store_url=url, users_url=url)
        indexer = start("watchlist-indexer", ["indexer", "--group", unique("bench")], settings)
        try:
            async with (
                running_api("watchlist-api", settings) as api,
                httpx.AsyncClient(base_url=api.url, timeout=httpx.Timeout(10, read=None)) as client,
            ):
                latencies = await _trials(client, api.token, settings, trials=trials, rate=rate)
        finally:
            stop(indexer)
    ordered = sorted(latencies)
    return {
        "trials": trials,
        "detections_per_second": rate,
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(ordered[max(int(len(ordered) * 0.99) - 1, 0)], 1),
        "max_ms": round(ordered[-1], 1),
    }


async def _trials(
    client: httpx.AsyncClient, token: str, settings: Settings, *, trials: int, rate: float
) -> list[float]:
    headers = {"Authorization": f"Bearer {token}"}
    # When each rule's first alert arrived; it may arrive before the POST's answer does.
    first_alert: dict[str, float] = {}
    new_rule_seen = asyncio.Condition()

    async def listen() -> None:
        async with client.stream("GET", "/alerts", headers=headers) as response:
            async for data in alert_payloads(response):
                arrived = time.perf_counter()
                for rule in orjson.loads(data)["rules"]:
                    if rule["id"] not in first_alert:
                        first_alert[rule["id"]] = arrived
                        async with new_rule_seen:
                            new_rule_seen.notify_all()

    listener = asyncio.create_task(listen())
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_broker_url, linger_ms=5)
    await producer.start()
    stop_producing = asyncio.Event()
    sedans = [v for v in load_catalog() if "suv" not in v.category.lower()]
    streams = [
        DetectionProducer(
            producer, topic=settings.detections_topic, vehicles=vehicles, rng=random.Random(4)
        ).run(rate=share, count=None, stop=stop_producing)
        for vehicles, share in ((sedans, rate * 0.9), ([PROBE], rate * 0.1))
    ]
    producing = [asyncio.create_task(stream) for stream in streams]
    latencies = []
    try:
        await asyncio.sleep(2)
        for trial in range(trials):
            body = {"name": f"probe-{trial}", "make": PROBE.make, "model": PROBE.model}
            sent = time.perf_counter()
            response = await client.post("/watchlists", json=body, headers=headers)
            rule_id = response.json()["id"]
            async with asyncio.timeout(30), new_rule_seen:
                await new_rule_seen.wait_for(lambda: rule_id in first_alert)  # noqa: B023
            latencies.append((first_alert[rule_id] - sent) * 1000)
            await client.delete(f"/watchlists/{rule_id}", headers=headers)
            await asyncio.sleep(0.1)
    finally:
        stop_producing.set()
        await asyncio.gather(*producing)
        await producer.stop()
        listener.cancel()
    return latencies
