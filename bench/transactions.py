"""What exactly-once alerts cost: the indexer's throughput into PostgreSQL, and an alert's
latency from camera to dashboard, with each batch's alerts and offsets committed in one
transaction a partition, against the same without (ALERTS_EXACTLY_ONCE=false). The two
take turns in one run."""

import statistics
from typing import Any

from bench import alert_latency
from bench.indexer_throughput import indexer_rate, summary
from bench.stack import Bench, preloaded


async def measure(
    bench: Bench, *, count: int, runs: int, alerts: int, background_rate: float
) -> dict[str, Any]:
    base, messages = await preloaded(bench, count, seed=1)
    rates: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(runs):
        for exactly_once in (False, True):
            async with bench.postgres_database() as url:
                settings = base.model_copy(
                    update={"detections_db_url": url, "alerts_exactly_once": exactly_once}
                )
                rates[exactly_once].append((await indexer_rate(settings, count)).per_second)
    latency = {
        exactly_once: await alert_latency.measure(
            bench, alerts=alerts, background_rate=background_rate, exactly_once=exactly_once
        )
        for exactly_once in (False, True)
    }
    return {
        "detections": count,
        "suspicious_share": round(sum(b'"SUV"' in m for m in messages) / count, 3),
        "at_least_once_per_second": summary(rates[False]),
        "exactly_once_per_second": summary(rates[True]),
        "throughput_ratio": round(
            statistics.median(rates[True]) / statistics.median(rates[False]), 2
        ),
        "alert_latency_at_least_once": {
            k: latency[False][k] for k in ("p50_ms", "p99_ms", "max_ms")
        },
        "alert_latency_exactly_once": {k: latency[True][k] for k in ("p50_ms", "p99_ms", "max_ms")},
    }
