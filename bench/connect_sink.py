"""The indexer against the tool a data engineer would pick instead: Kafka Connect's
standalone worker with the Debezium JDBC sink, taking the same detections from the broker
into PostgreSQL. They take turns, each on a fresh database; the figures are rows stored per
second from the first row to the last, and the CPU PostgreSQL's processes spent per row.

The sink writes to its own table (primary key only, upsert, batches of 2,000 with pgjdbc's
reWriteBatchedInserts), from Connect's JSON envelopes, which carry the schema it needs. The
indexer keeps everything it always does: counts per make and over time, the alert history,
days as partitions, and it matches 10,000 watchlist rules. ../shared/peers/connect/ in the
project's workspace ran the same comparison with more variants; its figures are a
cross-check.
"""

import asyncio
import random
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import orjson
from tests.helpers.ports import free_port
from tests.helpers.waiting import eventually

from bench.connect.provision import CACHE, DEBEZIUM, provision
from bench.indexer_throughput import indexer_rate, summary
from bench.stack import (
    LOGS,
    Bench,
    cpu_seconds,
    kafka_cpu_seconds,
    peak_rss_mb,
    postgres_cpu_seconds,
    preload,
    preloaded,
    stop,
)
from bench.watchlists import mixed_rules, publish_rules
from roadwatch.catalog.vehicles import load_catalog

# The indexer runs with every feature on: this many watchlist rules, as operators mix them.
RULES = 10_000
SCHEMA = {
    "type": "struct",
    "name": "detection",
    "optional": False,
    "fields": [
        {"field": "id", "type": "string", "optional": False},
        {"field": "year", "type": "int16", "optional": False},
        {"field": "make", "type": "string", "optional": False},
        {"field": "model", "type": "string", "optional": False},
        {"field": "category", "type": "string", "optional": False},
    ],
}


def envelopes(messages: list[bytes], rng: random.Random) -> list[bytes]:
    """The same detections as Connect's JsonConverter wants them, each with a UUID."""
    enveloped = []
    for message in messages:
        vehicle = orjson.loads(message)
        payload = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "year": vehicle["Year"],
            "make": vehicle["Make"],
            "model": vehicle["Model"],
            "category": vehicle["Category"],
        }
        enveloped.append(orjson.dumps({"schema": SCHEMA, "payload": payload}))
    return enveloped


def _write_configuration(folder: Path, *, bootstrap: str, topic: str, url: str) -> list[str]:
    """The worker's and the connector's properties; the command's arguments."""
    database = urlsplit(url)
    worker = {
        "bootstrap.servers": bootstrap,
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "true",
        "offset.storage.file.filename": str(folder / "offsets"),
        "plugin.path": str(CACHE / "plugins"),
        "plugin.discovery": "service_load",
        "listeners": f"http://127.0.0.1:{free_port()}",
        "connector.client.config.override.policy": "All",
    }
    sink = {
        "name": "detections-sink",
        "connector.class": "io.debezium.connector.jdbc.JdbcSinkConnector",
        "tasks.max": "1",
        "topics": topic,
        "connection.url": f"jdbc:postgresql://{database.hostname}:{database.port}"
        f"{database.path}?reWriteBatchedInserts=true",
        "connection.username": database.username or "",
        "connection.password": database.password or "",
        "insert.mode": "upsert",
        "primary.key.mode": "record_value",
        "primary.key.fields": "id",
        "collection.name.format": "detections",
        "schema.evolution": "basic",
        "batch.size": "2000",
        "consumer.override.group.id": f"sink-{uuid.uuid4().hex[:8]}",
        "consumer.override.auto.offset.reset": "earliest",
        "consumer.override.max.poll.records": "2000",
        "consumer.override.max.partition.fetch.bytes": "4194304",
        "use.time.zone": "UTC",
    }
    files = []
    for name, properties in (("worker", worker), ("sink", sink)):
        path = folder / f"{name}.properties"
        path.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
        files.append(str(path))
    return files


async def sink_rate(bootstrap: str, topic: str, url: str, expected: int) -> dict[str, float]:
    """Rows per second the sink stores, first row to last; the JVM's peak memory and CPU a
    row over those rows; and PostgreSQL's and the broker's CPU per row, in µs."""
    folder = LOGS / f"connect-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    java = shutil.which("java") or "java"
    command = [
        java, "-Xms256M", "-Xmx2G", "-XX:+UseG1GC",
        "-cp", f"{CACHE / 'libs'}/*",
        "org.apache.kafka.connect.cli.ConnectStandalone",
        *_write_configuration(folder, bootstrap=bootstrap, topic=topic, url=url),
    ]  # fmt: skip
    connection = await asyncpg.connect(url)
    cpu_before = postgres_cpu_seconds(), kafka_cpu_seconds()
    worker = _spawn(command, log=folder / "worker.log")
    try:

        async def stored() -> int:
            try:
                return int(await connection.fetchval("SELECT count(*) FROM detections"))
            except asyncpg.UndefinedTableError:
                return 0

        await eventually(lambda: _above(stored, 0), within=180, what="the sink's first row")
        first_seen, started = await stored(), time.perf_counter()
        worker_cpu_at_first = cpu_seconds(worker.pid)
        await eventually(lambda: _above(stored, expected - 1), within=900, what="every row")
        elapsed = time.perf_counter() - started
        worker_cpu = cpu_seconds(worker.pid) - worker_cpu_at_first
        memory = peak_rss_mb(worker)
        postgres_cpu, kafka_cpu = (
            after - before
            for after, before in zip(
                (postgres_cpu_seconds(), kafka_cpu_seconds()), cpu_before, strict=True
            )
        )
        distinct = await connection.fetchval("SELECT count(DISTINCT id) FROM detections")
        assert distinct == expected, f"the sink stored {distinct} distinct rows of {expected}"
    finally:
        stop(worker)
        await connection.close()
    return {
        "per_second": (expected - first_seen) / elapsed,
        "peak_rss_mb": memory,
        "cpu_us_per_row": worker_cpu / (expected - first_seen) * 1e6,
        "postgres_cpu_us_per_row": postgres_cpu / expected * 1e6,
        "kafka_cpu_us_per_row": kafka_cpu / expected * 1e6,
    }


def _spawn(command: list[str], *, log: Path) -> "subprocess.Popen[bytes]":
    with log.open("ab") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)


async def _above(count: Any, threshold: int) -> bool:
    return bool(await count() > threshold)


async def measure(bench: Bench, *, count: int, runs: int) -> dict[str, Any]:
    provision()
    base, messages = await preloaded(bench, count, seed=1)
    await publish_rules(
        bench.kafka, base.watchlists_topic, mixed_rules(RULES, load_catalog(), random.Random(1))
    )
    sink_topic = await bench.topic(6)
    await preload(bench.kafka, sink_topic, envelopes(messages, random.Random(2)))
    indexer: list[dict[str, float]] = []
    sink: list[dict[str, float]] = []
    for _ in range(runs):
        async with bench.postgres_database() as url:
            settings = base.model_copy(update={"detections_db_url": url})
            postgres_before, kafka_before = postgres_cpu_seconds(), kafka_cpu_seconds()
            run = await indexer_rate(settings, count)
            indexer.append(
                {
                    "per_second": run.per_second,
                    "peak_rss_mb": run.peak_rss_mb,
                    "cpu_us_per_row": run.cpu_us_per_row,
                    "postgres_cpu_us_per_row": (postgres_cpu_seconds() - postgres_before)
                    / count
                    * 1e6,
                    "kafka_cpu_us_per_row": (kafka_cpu_seconds() - kafka_before) / count * 1e6,
                }
            )
        async with bench.postgres_database() as url:
            sink.append(await sink_rate(bench.kafka, sink_topic, url, count))
    ours, theirs = _summed(indexer), _summed(sink)
    ratio = ours["per_second"]["median"] / theirs["per_second"]["median"]
    return {
        "detections": count,
        "rules": RULES,
        "indexer": ours,
        "sink": theirs,
        "ratio": round(ratio, 2),
    }


def _summed(runs: list[dict[str, float]]) -> dict[str, Any]:
    return {
        "per_second": summary([run["per_second"] for run in runs]),
        "peak_rss_mb": round(max(run["peak_rss_mb"] for run in runs), 1),
        **{
            cpu: summary([run[cpu] for run in runs], digits=1)
            for cpu in ("cpu_us_per_row", "postgres_cpu_us_per_row", "kafka_cpu_us_per_row")
        },
    }


def section(x: dict[str, Any]) -> list[str]:
    """The comparison as docs/benchmarks.md gives it."""
    rows = []
    for name, label in (
        ("indexer", f"roadwatch indexer (counts, history, days; {x.get('rules', 1):,} rules)"),
        ("sink", "Kafka Connect + Debezium JDBC sink, its own table"),
    ):
        rate, run = x[name]["per_second"], x[name]
        cpus = " | ".join(
            f"{run[cpu]['median']} µs"
            for cpu in ("cpu_us_per_row", "postgres_cpu_us_per_row", "kafka_cpu_us_per_row")
        )
        rows.append(
            f"| {label} | {rate['median']:,} | {rate['min']:,}–{rate['max']:,} | {rate['runs']} "
            f"| {cpus} | {run['peak_rss_mb']} MB |"
        )
    return [
        "",
        "## Against Kafka Connect",
        "",
        f"The same {x['detections']:,} detections, preloaded, taken into PostgreSQL by one "
        "`roadwatch indexer` and by Kafka Connect 4.1.1 (standalone) with the Debezium JDBC sink "
        f"{DEBEZIUM} (upsert on its own table with the primary key only, batches of 2,000, "
        "`reWriteBatchedInserts`, Connect's JSON envelopes), taking turns on fresh databases "
        "(`bench/connect_sink.py`). Rows a second from the first row to the last. CPU a row, "
        "medians: the writer's own (the indexer's process, Connect's JVM) over the same rows; "
        "PostgreSQL's (every server process) and the Kafka broker's from the writer's start to "
        "its last row.",
        "",
        "| writer | rows per second (median) | range | runs | its CPU a row "
        "| PostgreSQL's | Kafka's | peak RSS |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"The indexer against the sink: {x['ratio']:.2f}.",
    ]


if __name__ == "__main__":
    print(
        orjson.dumps(
            asyncio.run(measure(Bench(), count=100_000, runs=1)), option=orjson.OPT_INDENT_2
        ).decode()
    )
