"""What the hardened reader costs: one topic read and decoded, in turns, through aiokafka's
own parser and through roadwatch's reader (the tolerant fetch and Reader.read), in records
per second of the reading process's own CPU time, which the broker's work beside it does not
blur."""

import asyncio
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import orjson

from bench.stack import Bench, preload
from roadwatch.catalog.vehicles import load_catalog
from roadwatch.kafka import tolerant_fetch
from roadwatch.kafka.reader import Reader, SkipUnreadable, consumer


async def read_rate(
    bootstrap: str,
    topic: str,
    expected: int,
    *,
    hardened: bool,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Records read and decoded per second of `clock`, first record to last."""
    if hardened:
        tolerant_fetch.install()
    else:
        tolerant_fetch.uninstall()
    reading = consumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    if not hardened:
        # consumer() installs the tolerant fetch; this run is to read without it.
        tolerant_fetch.uninstall()
    reader = Reader(reading, on_unreadable=SkipUnreadable())
    await reading.start()
    try:
        seen, started = 0, 0.0
        while seen < expected:
            if hardened:
                records = (await reader.read(timeout_ms=1000, max_records=10_000)).records
            else:
                records = await reading.getmany(timeout_ms=1000, max_records=10_000)
            if not started and records:
                started = clock()
            for batch in records.values():
                for record in batch:
                    orjson.loads(record.value or b"null")
                seen += len(batch)
    finally:
        await reading.stop()
        tolerant_fetch.install()
    return expected / (clock() - started)


async def measure(bench: Bench, *, count: int, runs: int) -> dict[str, Any]:
    rng = random.Random(3)
    catalog = load_catalog()
    topic = await bench.topic(6)
    await preload(bench.kafka, topic, [rng.choice(catalog).as_message() for _ in range(count)])
    rates: dict[str, list[float]] = {"aiokafka": [], "hardened": []}
    for _ in range(runs):
        for name in rates:
            rates[name].append(
                await read_rate(
                    bench.kafka, topic, count, hardened=name == "hardened", clock=time.process_time
                )
            )
    medians = {name: statistics.median(values) for name, values in rates.items()}
    return {
        "records": count,
        "runs": runs,
        **{f"{name}_per_second": round(median) for name, median in medians.items()},
        **{f"{name}_all": [round(v) for v in values] for name, values in rates.items()},
        "ratio": round(medians["hardened"] / medians["aiokafka"], 3),
    }


if __name__ == "__main__":
    print(orjson.dumps(asyncio.run(measure(Bench(), count=500_000, runs=5))).decode())


def render(r: dict[str, Any]) -> list[str]:
    """The section of docs/benchmarks.md."""
    return [
        "",
        "## What the hardened reader costs",
        "",
        f"One topic of 6 partitions holding {r['records']:,} detections, read and decoded "
        f"whole, {r['runs']} times each way, in turns: through aiokafka's own record parser, "
        "and through roadwatch's reader (the tolerant fetch, which keeps each batch's bytes, "
        "and `Reader.read`, which sets unreadable records aside).",
        "",
        "| reading through | records per CPU second (median) | every run |",
        "|---|---|---|",
        f"| aiokafka's parser | {r['aiokafka_per_second']:,} | "
        f"{', '.join(f'{v:,}' for v in r['aiokafka_all'])} |",
        f"| roadwatch's reader | {r['hardened_per_second']:,} | "
        f"{', '.join(f'{v:,}' for v in r['hardened_all'])} |",
        "",
        f"The reader reads at {r['ratio']} of aiokafka's own rate.",
    ]
