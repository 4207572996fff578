"""The indexer's rate as its tables grow: 10,000,000 detections preloaded, one indexer
process into a fresh PostgreSQL database, timed at each million stored. A store that slows
as it fills shows here, where a run of a million cannot."""

import asyncio
import itertools
import random
import time
from typing import Any

import asyncpg
import orjson
from tests.helpers.servers import unique

from bench.stack import (
    Bench,
    cpu_seconds,
    machine_busy_seconds,
    peak_rss_mb,
    postgres_cpu_seconds,
    preload,
    reference_cpu_ms,
    start,
    stop,
)
from roadwatch.bootstrap.stores import detection_store
from roadwatch.catalog.vehicles import load_catalog

STEP = 1_000_000


async def measure(bench: Bench, *, millions: int) -> dict[str, Any]:
    base = await bench.settings_for(store_url=bench.settings.detections_db_url)
    rng = random.Random(1)
    catalog = load_catalog()
    for _ in range(millions):
        messages = [rng.choice(catalog).as_message() for _ in range(STEP)]
        await preload(bench.kafka, base.detections_topic, messages)
    async with bench.postgres_database() as url:
        settings = base.model_copy(update={"detections_db_url": url})
        store = detection_store(url)
        process = start("indexer", ["indexer", "--group", unique("growth")], settings)
        await store.open()
        server = await asyncpg.connect(url)
        crossed: list[float] = []
        # Where PostgreSQL's write-ahead log was at each mark: what each million wrote to it.
        wal: list[int] = []
        # The CPU the indexer, PostgreSQL and the whole machine had spent by each mark.
        cpu: list[tuple[float, float, float, float]] = []
        reference: list[float] = []
        try:
            while len(crossed) <= millions:
                stored = sum((await store.count_by_make()).values())
                # The first mark is the first row stored; then each million.
                while len(crossed) <= millions and stored >= max(1, len(crossed) * STEP):
                    crossed.append(time.perf_counter())
                    wal.append(await server.fetchval("SELECT pg_current_wal_lsn() - '0/0'"))
                    cpu.append(
                        (cpu_seconds(process.pid), postgres_cpu_seconds(), *machine_busy_seconds())
                    )
                    reference.append(reference_cpu_ms())
                await asyncio.sleep(0.1)
            memory = peak_rss_mb(process)
        finally:
            stop(process)
            await server.close()
            await store.close()
    rates = [round(STEP / (later - earlier)) for earlier, later in itertools.pairwise(crossed)]
    spent = [
        [b - a for a, b in zip(earlier, later, strict=True)]
        for earlier, later in itertools.pairwise(cpu)
    ]
    return {
        "detections": millions * STEP,
        "per_million": rates,
        "wal_bytes_per_row": [round((b - a) / STEP) for a, b in itertools.pairwise(wal)],
        "indexer_cpu_us_per_row": [round(d[0] / STEP * 1e6, 1) for d in spent],
        "postgres_cpu_us_per_row": [round(d[1] / STEP * 1e6, 1) for d in spent],
        "machine_busy": [round(d[2] / d[3], 2) for d in spent],
        # At the end of each million.
        "reference_cpu_ms": [round(ms, 1) for ms in reference[1:]],
        "last_to_first": round(rates[-1] / rates[0], 2),
        "indexer_peak_rss_mb": round(memory, 1),
    }


def section(x: dict[str, Any]) -> list[str]:
    curve = ", ".join(f"{rate:,}" for rate in x["per_million"])
    return [
        "",
        "## As the tables grow",
        "",
        f"{x['detections']:,} detections preloaded; one `roadwatch indexer` into a fresh "
        "PostgreSQL database, timed at each million stored (`bench/growth.py`). Rows a second, "
        f"million by million: {curve}. The last million against the first: "
        f"{x['last_to_first']:.2f}. Bytes of write-ahead log a row, million by million: "
        + ", ".join(f"{size:,}" for size in x["wal_bytes_per_row"])
        + ". CPU a row, million by million, of the indexer: "
        + ", ".join(f"{us} µs" for us in x["indexer_cpu_us_per_row"])
        + "; of PostgreSQL: "
        + ", ".join(f"{us} µs" for us in x["postgres_cpu_us_per_row"])
        + ". The machine's cores were busy "
        + ", ".join(f"{share:.0%}" for share in x["machine_busy"])
        + " of the time. A fixed piece of Python work took "
        + ", ".join(f"{ms} ms" for ms in x["reference_cpu_ms"])
        + " of CPU at the end of each million: the machine's own speed (`reference_cpu_ms`).",
    ]


if __name__ == "__main__":
    print(orjson.dumps(asyncio.run(measure(Bench(), millions=2))).decode())
