"""Does `roadwatch produce --rate R` hold R? Achieved rate per asked rate, from 1/s up."""

import asyncio
import random
import time
from typing import Any

from bench.stack import Bench
from roadwatch.bootstrap.clients import kafka_producer
from roadwatch.catalog.producer import DetectionProducer
from roadwatch.catalog.vehicles import load_catalog


async def achieved(bench: Bench, *, rate: float, seconds: float) -> float:
    settings = await bench.settings_for(store_url=bench.settings.detections_db_url)
    producer = kafka_producer(settings, linger_ms=20)
    await producer.start()
    try:
        source = DetectionProducer(
            producer,
            topic=settings.detections_topic,
            vehicles=load_catalog(),
            rng=random.Random(4),
        )
        count = max(int(rate * seconds), 2)
        began = time.perf_counter()
        stats = await source.run(rate=rate, count=count, stop=asyncio.Event())
        # The n-th detection is due at (n-1)/rate: n detections span (n-1)/rate seconds.
        elapsed = time.perf_counter() - began
    finally:
        await producer.stop()
    return (stats.acknowledged - 1) / elapsed


async def measure(bench: Bench, *, rates: list[float], seconds: float) -> dict[str, Any]:
    rows = []
    for rate in rates:
        got = await achieved(bench, rate=rate, seconds=seconds)
        rows.append(
            {
                "asked": rate,
                "achieved": round(got, 1),
                "error_pct": round(100 * (got - rate) / rate, 2),
            }
        )
    return {"seconds_each": seconds, "rates": rows}
