"""Helpers for tests that drive roadwatch through real Kafka topics."""

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import ConsumerRecord
from prometheus_client import CollectorRegistry

from roadwatch.bootstrap import started_indexer
from roadwatch.indexer.error_policy import STUCK_AFTER
from roadwatch.indexer.runner import Indexer
from roadwatch.kafka_topics import COMPACTED
from roadwatch.settings import Settings
from tests.conftest import Servers, create_topic, unique

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"


async def stream_settings(servers: Servers, *, store_url: str, suspicious: str = "SUV") -> Settings:
    """Settings whose topics no other test uses, storing into `store_url`."""
    return servers.settings.model_copy(
        update={
            "detections_topic": await create_topic(servers.kafka, partitions=6),
            "alerts_topic": await create_topic(servers.kafka, partitions=3),
            "dead_letter_topic": await create_topic(servers.kafka, partitions=1),
            "watchlists_topic": await create_topic(servers.kafka, partitions=1, config=COMPACTED),
            "detections_db_url": store_url,
            "suspicious_vehicle": suspicious,
        }
    )


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment through which a roadwatch process gets these settings."""
    return {**os.environ, **settings.as_environment(), "LOG_FORMAT": "json"}


async def send_values(
    bootstrap: str, topic: str, values: Iterable[bytes | None], *, key: bytes | None = None
) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        deliveries = [await producer.send(topic, value, key=key) for value in values]
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
    return len(deliveries)


async def send_to_every_partition(
    bootstrap: str, topic: str, values: Iterable[bytes], *, partitions: int
) -> None:
    """Each value once on every partition of `topic`."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        deliveries = [
            await producer.send(topic, value, partition=partition)
            for value in values
            for partition in range(partitions)
        ]
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()


async def read_topic(
    bootstrap: str, topic: str, *, expected: int, within: float = 60.0, settle: float = 1.0
) -> list[Record]:
    """Everything on `topic`, waiting up to `within` s for `expected` records, then `settle`
    s more so that records beyond the expected ones are seen too."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[Record] = []
    try:
        deadline = time.monotonic() + within
        while len(records) < expected and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records += batch
        settle_until = time.monotonic() + settle
        while time.monotonic() < settle_until:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records += batch
    finally:
        await consumer.stop()
    return records


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float, what: str, every: float = 0.25
) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:.0f} s: {what}")
        await asyncio.sleep(every)


@dataclass
class RunningIndexer:
    task: asyncio.Task[None]
    indexer: Indexer

    def done(self) -> bool:
        return self.task.done()


@asynccontextmanager
async def indexer_running(
    settings: Settings,
    *,
    group: str | None = None,
    stuck_after: float = STUCK_AFTER,
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[RunningIndexer]:
    """An indexer in this process, stopped (its batch finished) on leaving."""
    stop = asyncio.Event()
    async with started_indexer(
        settings,
        stop=stop,
        group_id=group or unique("group"),
        stuck_after=stuck_after,
        registry=registry,
    ) as indexer:
        task = asyncio.create_task(indexer.run(stop))
        try:
            yield RunningIndexer(task, indexer)
        finally:
            stop.set()
            await task


def start_indexer_process(
    settings: Settings, *, group: str, log: Path, metrics_port: int = 0
) -> subprocess.Popen[bytes]:
    """`roadwatch indexer` as its own process, its output appended to `log`."""
    command = ["indexer", "--group", group, "--metrics-port", str(metrics_port)]
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "roadwatch", *command],
            env=settings_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
