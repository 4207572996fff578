"""The pieces every benchmark needs: fresh topics and databases, processes, their memory."""

import asyncio
import os
import random
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import httpx
from aiokafka import AIOKafkaProducer
from tests.helpers.ports import free_port
from tests.helpers.processes import stop_process
from tests.helpers.servers import fresh_postgres_database, unique
from tests.helpers.waiting import eventually

from roadwatch.catalog.vehicles import load_catalog
from roadwatch.infra.config import InfraConfig
from roadwatch.infra.stack import Infrastructure
from roadwatch.kafka.topics import COMPACTED, TopicSpec, create_missing_topics
from roadwatch.settings import Settings, load_settings

LOGS = Path(".roadwatch/bench")
BENCH_SETUP_TOKEN = "bench-setup-token"  # noqa: S105 - the benchmarks', on local ports


class Bench:
    """The local servers, and fresh, isolated resources on them."""

    def __init__(self) -> None:
        config = InfraConfig()
        self.settings = load_settings(config.home)
        self.infrastructure = Infrastructure(config, self.settings)
        env = self.infrastructure.connection_settings()
        self.kafka = env["KAFKA_BROKER_URL"]
        self.postgres_url = env["POSTGRES_URL"]
        self.mongo_url = env["MONGO_URL"]
        LOGS.mkdir(parents=True, exist_ok=True)

    async def topic(self, partitions: int, config: dict[str, str] | None = None) -> str:
        name = unique("bench").replace("_", ".")
        await create_missing_topics(
            {"bootstrap_servers": self.kafka}, [TopicSpec(name, partitions, config or {})]
        )
        return name

    def postgres_database(self) -> AbstractAsyncContextManager[str]:
        return fresh_postgres_database(self)

    def mongo_database(self) -> str:
        return f"{self.mongo_url.rsplit('/', 1)[0]}/{unique('bench')}"

    async def settings_for(self, *, store_url: str, users_url: str | None = None) -> Settings:
        return self.settings.model_copy(
            update={
                "detections_topic": await self.topic(6),
                "alerts_topic": await self.topic(3),
                "dead_letter_topic": await self.topic(1),
                "watchlists_topic": await self.topic(1, COMPACTED),
                "detections_db_url": store_url,
                "users_db_url": users_url or self.settings.users_db_url,
                # The benchmarks load detections spread over days past the window.
                "detections_accept_days": None,
            }
        )


def environment(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        **settings.as_environment(),
        "JWT_SECRET": "bench-" + "0123456789abcdef" * 4,
        "SETUP_TOKEN": BENCH_SETUP_TOKEN,
        "LOG_FORMAT": "json",
    }


def start(
    name: str, args: list[str], settings: Settings, *, profile_to: Path | None = None
) -> subprocess.Popen[bytes]:
    """`roadwatch ARGS…` with the settings; given `profile_to`, under bench/oncpu.py, which
    writes the process's profile there as it ends."""
    log = (LOGS / f"{name}.log").open("ab")
    module = ["-m"] if profile_to is None else ["-m", "bench.oncpu", str(profile_to)]
    return subprocess.Popen(
        [sys.executable, *module, "roadwatch", *args],
        env=environment(settings),
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def start_bare_api(port: int, database: str) -> subprocess.Popen[bytes]:
    """bench/bare_api.py on `port`, over `database`."""
    log = (LOGS / "bare-api.log").open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "bench.bare_api", str(port), database],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def peak_rss_mb(process: subprocess.Popen[bytes]) -> float:
    """The process's peak resident memory so far (VmHWM), in MB."""
    for line in Path(f"/proc/{process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def _cpu_of(stat: str) -> float:
    """The CPU time, user and system, in a /proc/<pid>/stat: the process's, and that of its
    children that ended."""
    fields = stat.rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """The CPU time that a process has spent so far."""
    return _cpu_of(Path(f"/proc/{pid}/stat").read_text())


def postgres_cpu_seconds(*, names: tuple[str, ...] = ("postgres",)) -> float:
    """The CPU time that every PostgreSQL process has spent so far (those that ended are in
    their parent's children's times), or every process whose name starts with one of
    `names`."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if text[text.index("(") + 1 : text.rindex(")")].startswith(names):
            total += _cpu_of(text)
    return total


def kafka_cpu_seconds() -> float:
    """The CPU time that the Kafka broker (every process running kafka.Kafka) has spent."""
    total = 0.0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"\0kafka.Kafka\0" in cmdline.read_bytes():
                total += cpu_seconds(int(cmdline.parent.name))
        except (OSError, ValueError):
            continue
    return total


def reference_cpu_ms() -> float:
    """The CPU time of a fixed piece of pure Python work, in milliseconds (the median of
    three): how fast the machine runs at the moment, to tell a program that does more from
    a machine that runs slower, on shared cores."""
    times = []
    for _ in range(3):
        started, total = time.process_time(), 0
        for i in range(200_000):
            total += i * i % 7
        times.append((time.process_time() - started) * 1000)
    return sorted(times)[1]


def machine_busy_seconds() -> tuple[float, float]:
    """The machine's CPU time so far, busy and in all, summed over its cores."""
    ticks = os.sysconf("SC_CLK_TCK")
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / ticks, sum(values) / ticks


class CpuSpent(NamedTuple):
    """CPU seconds spent so far: by the process writing the rows, by the database (PostgreSQL,
    and FerretDB in front of it), by the Kafka broker, and by the whole machine, busy and in
    all (summed over its cores)."""

    writer: float
    database: float
    kafka: float
    busy: float
    total: float

    @classmethod
    def now(cls, writer_pid: int) -> "CpuSpent":
        return cls(
            cpu_seconds(writer_pid),
            postgres_cpu_seconds(names=("postgres", "ferretdb")),
            kafka_cpu_seconds(),
            *machine_busy_seconds(),
        )

    def per_row_since(self, before: "CpuSpent", rows: int) -> dict[str, float]:
        """µs of CPU a row since `before`: the writer's, the database's, Kafka's, the three
        together (`all`), and the share of the machine's time it was busy."""
        spent = [now - then for now, then in zip(self, before, strict=True)]
        writer, database, kafka = (value / rows * 1e6 for value in spent[:3])
        return {
            "writer": round(writer, 2),
            "database": round(database, 2),
            "kafka": round(kafka, 2),
            "all": round(writer + database + kafka, 2),
            "machine_busy": round(spent[3] / spent[4], 3) if spent[4] else 0.0,
        }


def stop(process: subprocess.Popen[bytes]) -> None:
    stop_process(process)


async def preload(bootstrap: str, topic: str, messages: list[bytes]) -> float:
    """Publish `messages` as fast as the broker takes them; the rate reached, per second."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    started = time.perf_counter()
    try:
        pending = []
        for index, message in enumerate(messages):
            pending.append(await producer.send(topic, message))
            if index % 50_000 == 0:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return len(messages) / (time.perf_counter() - started)


async def preloaded(bench: "Bench", count: int, *, seed: int) -> tuple[Settings, list[bytes]]:
    """Settings over fresh topics, `count` detections drawn from the catalog (by
    random.Random(seed)) preloaded on their detections topic; the settings and the messages."""
    rng = random.Random(seed)
    catalog = load_catalog()
    messages = [rng.choice(catalog).as_message() for _ in range(count)]
    settings = await bench.settings_for(store_url=bench.settings.detections_db_url)
    await preload(bench.kafka, settings.detections_topic, messages)
    return settings, messages


async def api_ready(url: str, *, path: str = "/readyz", within: float = 60) -> None:
    """Return once `url` answers `path` with 200."""
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:

        async def ready() -> bool:
            try:
                return (await client.get(path)).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(ready, within=within, what=f"{url}{path} answering", every=0.2)


ADMIN = {"username": "bench", "password": "a measured road ahead"}


@dataclass(frozen=True)
class RunningApi:
    url: str
    token: str
    process: subprocess.Popen[bytes]


@asynccontextmanager
async def running_api(
    name: str, settings: Settings, *, workers: int = 1
) -> AsyncIterator[RunningApi]:
    """`roadwatch api` as its own process, ready, with an administrator's token (made by
    the first of the APIs on these settings)."""
    port = free_port()
    process = start(name, ["api", "--port", str(port), "--workers", str(workers)], settings)
    url = f"http://127.0.0.1:{port}"
    try:
        await api_ready(url)
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            await client.post("/users", json=ADMIN, headers={"X-Setup-Token": BENCH_SETUP_TOKEN})
            token = (await client.post("/token", data=ADMIN)).json()["access_token"]
        yield RunningApi(url, token, process)
    finally:
        stop(process)
