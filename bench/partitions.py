"""How the indexer goes with the detections topic's partitions. With exactly-once alerts,
each partition it holds gets a transactional producer of its own and a transaction a batch
(indexer/transactions.py): the same detections on topics of more partitions, with
exactly-once alerts and without, taking turns on fresh databases."""

import random
import statistics
from typing import Any

from bench.indexer_throughput import indexer_rate, summary
from bench.stack import Bench, preload
from roadwatch.catalog.vehicles import load_catalog


async def measure(
    bench: Bench, *, count: int, runs: int, partitions: tuple[int, ...]
) -> dict[str, Any]:
    rng = random.Random(7)
    catalog = load_catalog()
    messages = [rng.choice(catalog).as_message() for _ in range(count)]
    base = await bench.settings_for(store_url=bench.settings.detections_db_url)
    topics = {n: await bench.topic(n) for n in partitions}
    for topic in topics.values():
        await preload(bench.kafka, topic, messages)
    rates: dict[tuple[int, bool], list[float]] = {}
    memory: dict[tuple[int, bool], list[float]] = {}
    cpu: dict[tuple[int, bool], list[float]] = {}
    for _ in range(runs):
        for n, topic in topics.items():
            for exactly_once in (True, False):
                async with bench.postgres_database() as url:
                    settings = base.model_copy(
                        update={
                            "detections_topic": topic,
                            "detections_db_url": url,
                            "alerts_exactly_once": exactly_once,
                        }
                    )
                    run = await indexer_rate(settings, count)
                rates.setdefault((n, exactly_once), []).append(run.per_second)
                memory.setdefault((n, exactly_once), []).append(run.peak_rss_mb)
                cpu.setdefault((n, exactly_once), []).append(run.cpu_us_per_row)
    rows = []
    for n in partitions:
        row: dict[str, Any] = {"partitions": n}
        for exactly_once, name in ((True, "exactly_once"), (False, "at_least_once")):
            row[name] = {
                "per_second": summary(rates[n, exactly_once]),
                "indexer_cpu_us_per_row": round(statistics.median(cpu[n, exactly_once]), 2),
                "peak_rss_mb": round(statistics.median(memory[n, exactly_once])),
            }
        row["ratio"] = round(
            row["exactly_once"]["per_second"]["median"]
            / row["at_least_once"]["per_second"]["median"],
            2,
        )
        rows.append(row)
    return {"detections": count, "by_partitions": rows}


def section(x: dict[str, Any]) -> list[str]:
    lines = [
        "",
        "## Partitions",
        "",
        f"The same {x['detections']:,} detections preloaded on topics of more partitions; one "
        "`roadwatch indexer` into PostgreSQL, with exactly-once alerts (a transactional "
        "producer and a transaction a batch for each partition it holds) and without, taking "
        "turns on fresh databases (`bench/partitions.py`).",
        "",
        "| partitions | exactly once, per second (median) | range | at least once | range "
        "| ratio | indexer CPU a row (exactly once) | peak RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in x["by_partitions"]:
        once, least = row["exactly_once"], row["at_least_once"]
        a, b = once["per_second"], least["per_second"]
        lines.append(
            f"| {row['partitions']} | {a['median']:,} | {a['min']:,}–{a['max']:,} | "
            f"{b['median']:,} | {b['min']:,}–{b['max']:,} | {row['ratio']:.2f} | "
            f"{once['indexer_cpu_us_per_row']} µs | {once['peak_rss_mb']} MB |"
        )
    return lines
