"""`make bench`: every benchmark against the local servers; results to bench/results/ and
docs/benchmarks.md."""

import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from tests.helpers.servers import remove_session_mongo_databases, remove_session_topics

from bench import (
    alert_latency,
    alerts_in_rows,
    api_abuse,
    api_scale,
    connect_sink,
    count_history,
    fanout,
    growth,
    indexer_profile,
    indexer_throughput,
    many_days,
    partitions,
    producer_rate,
    reader_cost,
    report,
    secured,
    time_windows,
    transactions,
    watchlists,
    webhooks,
)
from bench.stack import Bench

ROOT = Path(__file__).resolve().parents[1]


async def main() -> None:
    bench = Bench()
    results: dict[str, Any] = {"machine": report.machine()}
    steps: dict[str, Callable[[], Awaitable[Any]]] = {
        "indexer_throughput": lambda: indexer_throughput.measure(
            bench, count=500_000, runs=3, backends={"postgres": 500_000, "mongo": 100_000}
        ),
        "indexer_profile": lambda: indexer_profile.measure(bench, count=500_000),
        "reader_cost": lambda: reader_cost.measure(bench, count=500_000, runs=5),
        "secured": lambda: secured.measure(bench, count=300_000, runs=3),
        "watchlists": lambda: _watchlists(bench),
        "alert_latency": lambda: alert_latency.measure(bench, alerts=200, background_rate=1000),
        "transactions": lambda: transactions.measure(
            bench, count=200_000, runs=3, alerts=200, background_rate=1000
        ),
        "partitions": lambda: partitions.measure(
            bench, count=300_000, runs=2, partitions=(6, 24, 96)
        ),
        "connect_sink": lambda: connect_sink.measure(bench, count=1_000_000, runs=3),
        "alerts_in_rows": lambda: alerts_in_rows.measure(bench, count=1_000_000, runs=3),
        "growth": lambda: growth.measure(bench, millions=10),
        "count_history": lambda: count_history.measure(bench, days=[0, 1, 7, 30]),
        "many_days": lambda: many_days.measure(bench, days=[30, 365, 730], per_day=200),
        "api_scale": lambda: api_scale.measure(bench, count=1_000_000, depth=100_000, samples=200),
        "time_windows": lambda: time_windows.measure(bench, count=10_000_000, samples=200),
        "fanout": lambda: fanout.measure(bench, clients=500, alerts=50),
        "webhooks": lambda: webhooks.measure(bench, seconds=15),
        "api_abuse": lambda: api_abuse.measure(bench, seconds=10),
        "producer_rate": lambda: producer_rate.measure(
            bench, rates=[1, 10, 1_000, 10_000, 50_000], seconds=10
        ),
    }
    # `python -m bench STEP …` runs those steps alone, prints them and keeps them in
    # bench/results/<time>-<steps>.json; only a whole run writes docs/benchmarks.md.
    chosen = sys.argv[1:] or list(steps)
    unknown = set(chosen) - steps.keys()
    if unknown:
        raise SystemExit(f"bench: no step {', '.join(sorted(unknown))}; steps: {', '.join(steps)}")
    for name in chosen:
        step = steps[name]
        began = time.perf_counter()
        print(f"bench: {name} …", flush=True)
        results[name] = await step()
        print(
            f"bench: {name} done in {time.perf_counter() - began:.0f} s: {results[name]}",
            flush=True,
        )
    if chosen == list(steps):
        path = report.write(
            results, folder=ROOT / "bench" / "results", markdown=ROOT / "docs" / "benchmarks.md"
        )
        print(f"bench: results in {path} and docs/benchmarks.md")
    else:
        path = report.write_part(results, folder=ROOT / "bench" / "results", steps=chosen)
        print(f"bench: results in {path}")
    # The topics and MongoDB databases made for the run go with it, as a test session's do.
    await remove_session_topics(bench.kafka)
    await remove_session_mongo_databases(bench.mongo_url)


async def _watchlists(bench: Bench) -> dict[str, Any]:
    return {
        "throughput": await watchlists.throughput(
            bench, count=300_000, runs=3, rule_counts=(1, 10_000)
        ),
        "rule_to_first_alert": await watchlists.rule_to_first_alert(bench, trials=100, rate=1000),
    }


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main())
