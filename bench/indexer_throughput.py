"""How many detections per second the indexer stores, against a bare consumer's rate."""

import asyncio
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from tests.helpers.servers import unique
from tests.helpers.waiting import eventually

from bench.reader_cost import read_rate
from bench.stack import Bench, CpuSpent, peak_rss_mb, preload, start, stop
from roadwatch.bootstrap.stores import detection_store
from roadwatch.catalog.vehicles import load_catalog
from roadwatch.domain import Alert, Detection, Source
from roadwatch.indexer.batch import MAX_BATCH
from roadwatch.parsing import parse_detection
from roadwatch.settings import Settings
from roadwatch.watchlists.matching import RuleIndex
from roadwatch.watchlists.rules import seed_rule


async def bare_consumer_rate(bootstrap: str, topic: str, expected: int) -> float:
    """Read and decode the whole topic, doing nothing else: the ceiling for the indexer."""
    return await read_rate(bootstrap, topic, expected, hardened=False)


class StoreRun(NamedTuple):
    """Rows the store saved per second, and the CPU it took a row (CpuSpent.per_row_since;
    the writer is this process)."""

    per_second: float
    cpu: dict[str, float]


async def store_rate(
    url: str, detections: list[Detection], *, rules: RuleIndex | None = None, batch: int = MAX_BATCH
) -> StoreRun:
    """Detections per second the store saves when handed ready batches, of the indexer's
    size and as many at once as it runs: the ceiling that the database itself sets. Given
    `rules`, each batch's alerts are kept after it, as the indexer keeps them: the same
    writes."""
    store = detection_store(url)
    await store.open()
    try:
        batches = iter(
            [
                (ready, _alerts(ready, rules))
                for ready in (detections[i : i + batch] for i in range(0, len(detections), batch))
            ]
        )

        async def saver() -> None:
            for ready, alerts in batches:
                await store.save(ready)
                await store.save_alerts(alerts)

        cpu_before, started = CpuSpent.now(os.getpid()), time.perf_counter()
        await asyncio.gather(*(saver() for _ in range(store.saves_at_once)))
        elapsed = time.perf_counter() - started
        cpu = CpuSpent.now(os.getpid()).per_row_since(cpu_before, len(detections))
        return StoreRun(len(detections) / elapsed, cpu)
    finally:
        await store.close()


def _alerts(batch: list[Detection], rules: RuleIndex | None) -> list[Alert]:
    if rules is None:
        return []
    return [Alert.of(d, matched) for d in batch if (matched := rules.matches(d))]


def parsed(messages: list[bytes], topic: str, partitions: int = 6) -> list[Detection]:
    """The messages as the indexer sees them, spread over partitions like the topic's."""
    return [
        parse_detection(
            message,
            source=Source(topic, index % partitions, index // partitions),
            timestamp_ms=1_700_000_000_000 + index,
        )
        for index, message in enumerate(messages)
    ]


class WriterRun(NamedTuple):
    """Rows stored per second, from the first row to the last; the writer's peak memory; and
    the CPU a row over those rows (CpuSpent.per_row_since; the writer is the indexer)."""

    per_second: float
    peak_rss_mb: float
    cpu: dict[str, float]

    @property
    def cpu_us_per_row(self) -> float:
        return self.cpu["writer"]


async def indexer_rate(
    settings: Settings, expected: int, *, profile_to: Path | None = None
) -> WriterRun:
    """How one `roadwatch indexer` process stores `expected` detections; given `profile_to`,
    under bench/oncpu.py, which writes its profile there."""
    store = detection_store(settings.detections_db_url)
    process = start(
        "indexer", ["indexer", "--group", unique("bench")], settings, profile_to=profile_to
    )
    await store.open()
    try:

        async def stored() -> int:
            return sum((await store.count_by_make()).values())

        await eventually(lambda: _above(stored, 0), within=120, what="the first stored", every=0.02)
        first_seen, started = await stored(), time.perf_counter()
        cpu_at_first = CpuSpent.now(process.pid)
        await eventually(
            lambda: _above(stored, expected - 1), within=900, what="every one stored", every=0.1
        )
        elapsed = time.perf_counter() - started
        cpu = CpuSpent.now(process.pid).per_row_since(cpu_at_first, expected - first_seen)
        memory = peak_rss_mb(process)
    finally:
        stop(process)
        await store.close()
    return WriterRun((expected - first_seen) / elapsed, memory, cpu)


async def _above(count: Any, threshold: int) -> bool:
    return bool(await count() > threshold)


async def measure(
    bench: Bench, *, count: int, runs: int, backends: dict[str, int]
) -> dict[str, Any]:
    rng = random.Random(1)
    catalog = load_catalog()
    messages = [rng.choice(catalog).as_message() for _ in range(count)]
    base = await bench.settings_for(store_url=bench.settings.detections_db_url)
    # The indexer's one rule: the configured suspicious vehicle.
    rules = RuleIndex([seed_rule(base.suspicious_vehicle)])
    produce_rate = await preload(bench.kafka, base.detections_topic, messages)
    bare = [
        await bare_consumer_rate(bench.kafka, base.detections_topic, count) for _ in range(runs)
    ]
    result: dict[str, Any] = {
        "detections": count,
        "preload_per_second": round(produce_rate),
        "bare_consumer_per_second": summary(bare),
        "suspicious_vehicle": base.suspicious_vehicle,
        "store_batch": MAX_BATCH,
    }
    for backend, backend_count in backends.items():
        rates, ceilings, same_writes, memories, cpus = [], [], [], [], []
        detections = parsed(messages[:backend_count], base.detections_topic)
        result.setdefault(
            "alerting_share", round(len(_alerts(detections, rules)) / len(detections), 3)
        )
        for _ in range(runs):
            if backend == "postgres":
                async with bench.postgres_database() as url:
                    settings = base.model_copy(update={"detections_db_url": url})
                    run = await indexer_rate(settings, backend_count)
                async with bench.postgres_database() as url:
                    ceilings.append(await store_rate(url, detections))
                async with bench.postgres_database() as url:
                    same_writes.append(await store_rate(url, detections, rules=rules))
            else:
                settings = base.model_copy(update={"detections_db_url": bench.mongo_database()})
                run = await indexer_rate(settings, backend_count)
                ceilings.append(await store_rate(bench.mongo_database(), detections))
                same_writes.append(
                    await store_rate(bench.mongo_database(), detections, rules=rules)
                )
            rates.append(run.per_second)
            memories.append(run.peak_rss_mb)
            cpus.append(run.cpu)
        result[backend] = {
            "detections": backend_count,
            "per_second": summary(rates),
            "ratio_to_bare_consumer": round(statistics.median(rates) / statistics.median(bare), 2),
            "store_alone_per_second": summary([c.per_second for c in ceilings]),
            "ratio_to_store_alone": round(
                statistics.median(rates) / statistics.median(c.per_second for c in ceilings), 2
            ),
            "store_same_writes_per_second": summary([s.per_second for s in same_writes]),
            "ratio_to_store_same_writes": round(
                statistics.median(rates) / statistics.median(s.per_second for s in same_writes),
                2,
            ),
            "peak_rss_mb": round(max(memories), 1),
            "indexer_cpu_us_per_row": summary([c["writer"] for c in cpus], digits=1),
            # Medians, µs a row: see CpuSpent.per_row_since.
            "cpu_us_per_row": {
                "indexer": median_cpu(cpus),
                "store_alone": median_cpu([c.cpu for c in ceilings]),
                "store_same_writes": median_cpu([s.cpu for s in same_writes]),
            },
        }
    return result


def median_cpu(runs: list[dict[str, float]]) -> dict[str, float]:
    """Each figure's median over the runs."""
    return {key: round(statistics.median(run[key] for run in runs), 3) for key in runs[0]}


def summary(values: list[float], *, digits: int | None = None) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "runs": len(values),
    }


if __name__ == "__main__":
    print(
        orjson.dumps(
            asyncio.run(
                measure(
                    Bench(), count=100_000, runs=1, backends={"postgres": 100_000, "mongo": 20_000}
                )
            ),
            option=orjson.OPT_INDENT_2,
        ).decode()
    )


def render_cpu(t: dict[str, Any]) -> list[str]:
    """Where each run's CPU went, a row, beside its rate: on a machine whose cores are all
    busy, rates go as the inverse of the CPU every process spends a row."""
    runs = (
        ("the store alone", "store_alone", "store_alone_per_second"),
        ("the store alone, with the alerts", "store_same_writes", "store_same_writes_per_second"),
        ("the indexer", "indexer", "per_second"),
    )
    measured = [b for b in ("postgres", "mongo") if "cpu_us_per_row" in t.get(b, {})]
    if not measured:
        return []
    lines = [
        "",
        "CPU a row, medians: the writer's own (the indexer, or the benchmark's process saving "
        "ready batches), the database's (every PostgreSQL process, and FerretDB's), the Kafka "
        "broker's; and how busy the machine's cores were. The CPU ratio is the store alone's "
        "CPU a row over the run's: the share of the store alone's rate that the run would "
        "reach if every core were busy in both.",
    ]
    for backend in measured:
        b = t[backend]
        cpu = b["cpu_us_per_row"]
        alone = cpu["store_alone"]["all"]
        lines += [
            "",
            f"| into {backend} | per second | writer | database | Kafka | all | cores busy "
            "| CPU ratio |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, key, rate in runs:
            c = cpu[key]
            lines.append(
                f"| {name} | {b[rate]['median']:,} | {c['writer']} µs | {c['database']} µs "
                f"| {c['kafka']} µs | {c['all']} µs | {c['machine_busy']:.0%} "
                f"| {alone / c['all']:.2f} |"
            )
    return lines
