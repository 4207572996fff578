"""The API's latency with a million detections stored, and its throughput under 50 clients."""

import asyncio
import random
import re
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
from tests.helpers.ports import free_port

from bench.stack import Bench, api_ready, running_api, start_bare_api, stop
from roadwatch.api.cursors import encode_cursor
from roadwatch.bootstrap.stores import detection_store
from roadwatch.catalog.vehicles import Vehicle, load_catalog
from roadwatch.domain import Alert, Detection, RuleRef, Source
from roadwatch.stores.detection_store import AlertFilter, Position

BATCH = 10_000


RULES = [RuleRef(uuid.UUID(int=n, version=4), f"rule-{n}") for n in range(100)]


def _rules_of(rng: random.Random) -> tuple[RuleRef, ...]:
    """One rule of a hundred, or two: how alerts spread over the rules they matched."""
    return tuple(rng.sample(RULES, rng.choice((1, 1, 1, 2))))


def random_detection(
    rng: random.Random, catalog: Sequence[Vehicle], *, at: datetime, source: Source
) -> Detection:
    """A vehicle of the catalog, seen at `at`, with a random id."""
    vehicle = rng.choice(catalog)
    return Detection(
        id=uuid.UUID(int=rng.getrandbits(128), version=4),
        timestamp=at,
        year=vehicle.year,
        make=vehicle.make,
        model=vehicle.model,
        category=vehicle.category,
        source=source,
    )


async def fill(url: str, count: int) -> float:
    """Store `count` detections spread over 30 days, each with an alert in the history;
    the rate at which the store took detections and alerts together."""
    store = detection_store(url)
    await store.open()
    rng = random.Random(3)
    catalog = load_catalog()
    start_time = datetime(2026, 1, 1, tzinfo=UTC)
    began = time.perf_counter()
    try:
        for first in range(0, count, BATCH):
            batch = []
            for offset in range(first, min(first + BATCH, count)):
                at = start_time + timedelta(milliseconds=offset * 2592)
                batch.append(
                    random_detection(rng, catalog, at=at, source=Source("bench", 0, offset))
                )
            await store.save(batch)
            await store.save_alerts([Alert(d, _rules_of(rng)) for d in batch])
    finally:
        await store.close()
    return count / (time.perf_counter() - began)


async def analyzed(url: str) -> None:
    """The database with the statistics a running one has (autovacuum's, or an operator's
    ANALYZE): the planner chooses differently without them, and not always for the worse."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def latencies(
    client: httpx.AsyncClient, path: str, params: dict[str, Any], n: int
) -> dict[str, float]:
    timings = []
    for _ in range(n):
        started = time.perf_counter()
        response = await client.get(path, params=params)
        timings.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    timings.sort()
    return {
        "p50_ms": round(statistics.median(timings), 2),
        "p99_ms": round(timings[int(n * 0.99) - 1], 2),
    }


async def _throughput(url: str, headers: dict[str, str], *, clients: int, seconds: int) -> float:
    """Requests per second to `url` that `clients` connections get, asking one after another
    (wrk: a load generator in C, so that the client's own cost does not cap the figure)."""
    command = ["wrk", "--threads", "2", "--connections", str(clients)]
    command += ["--duration", f"{seconds}s", "--timeout", "30s"]
    for name, value in headers.items():
        command += ["--header", f"{name}: {value}"]
    wrk = await asyncio.create_subprocess_exec(*command, url, stdout=asyncio.subprocess.PIPE)
    output = (await wrk.communicate())[0].decode()
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if wrk.returncode != 0 or rate is None or "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"the load run had failures:\n{output}")
    return float(rate[1])


async def _side_by_side(
    api: str, bare: str, headers: dict[str, str], requests: dict[str, str], *, runs: int
) -> dict[str, dict[str, Any]]:
    """For each request, requests/s of the API and of the bare endpoint under 50 clients,
    their runs interleaved so that a slow spell of the machine falls on both."""
    table: dict[str, dict[str, Any]] = {}
    for name, path in requests.items():
        rates: dict[str, list[float]] = {"api": [], "bare": []}
        for _ in range(runs):
            rates["api"].append(await _throughput(api + path, headers, clients=50, seconds=10))
            rates["bare"].append(await _throughput(bare + path, {}, clients=50, seconds=10))
        api_rate, bare_rate = statistics.median(rates["api"]), statistics.median(rates["bare"])
        table[name] = {
            "path": path,
            "api_rps": round(api_rate),
            "api_runs": [round(rate) for rate in rates["api"]],
            "bare_rps": round(bare_rate),
            "bare_runs": [round(rate) for rate in rates["bare"]],
            "ratio": round(api_rate / bare_rate, 2),
        }
    return table


async def measure(bench: Bench, *, count: int, depth: int, samples: int) -> dict[str, Any]:
    async with bench.postgres_database() as url:
        fill_rate = await fill(url, count)
        await analyzed(url)
        store = detection_store(url)
        await store.open()
        deep = (await store.list(skip=depth - 1, limit=1))[0]
        busiest = next(iter(await store.count_by_make()))
        # Halfway down one rule's history: a page that follows from a cursor.
        rule = RULES[7].id
        rule_alerts = count * 5 // 4 // len(RULES)
        halfway = (await store.alerts(AlertFilter(rule=rule), limit=rule_alerts // 2))[-1]
        await store.close()
        settings = await bench.settings_for(store_url=url, users_url=url)
        async with running_api("scale-api", settings) as api:
            headers = {"Authorization": f"Bearer {api.token}"}
            async with httpx.AsyncClient(base_url=api.url, timeout=60, headers=headers) as client:
                cursor = encode_cursor(Position(deep.timestamp, deep.id))
                result = {
                    "detections": count,
                    "fill_per_second": round(fill_rate),
                    "stats": await latencies(client, "/stats", {}, samples),
                    "first_page": await latencies(client, "/detections", {"limit": 50}, samples),
                    f"skip_{depth}": await latencies(
                        client, "/detections", {"limit": 50, "skip": depth}, max(samples // 10, 10)
                    ),
                    f"cursor_at_{depth}": await latencies(
                        client, "/detections", {"limit": 50, "cursor": cursor}, samples
                    ),
                    "history_first_page": await latencies(
                        client, "/alerts/history", {"limit": 50}, samples
                    ),
                    "history_one_rule": await latencies(
                        client, "/alerts/history", {"limit": 50, "rule": str(rule)}, samples
                    ),
                    "history_one_rule_halfway": await latencies(
                        client,
                        "/alerts/history",
                        {
                            "limit": 50,
                            "rule": str(rule),
                            "cursor": encode_cursor(
                                Position(halfway.detection.timestamp, halfway.detection.id)
                            ),
                        },
                        samples,
                    ),
                }
            async with _bare_endpoint(url) as bare:
                result["side_by_side_50_clients"] = await _side_by_side(
                    api.url, bare, headers, _read_requests(cursor, busiest, depth), runs=2
                )
            async with running_api("scale-api-2-workers", settings, workers=2) as two:
                result["two_workers_50_clients"] = await _two_workers(
                    api.url, two.url, {"Authorization": f"Bearer {two.token}"}, runs=2
                )
    return result


async def _two_workers(
    one: str, two: str, headers: dict[str, str], *, runs: int
) -> dict[str, dict[str, Any]]:
    """Requests/s of the first page and /stats, one API process beside one with two
    workers, their runs interleaved."""
    table: dict[str, dict[str, Any]] = {}
    for path in ("/detections?limit=50", "/stats"):
        rates: dict[str, list[float]] = {"one": [], "two": []}
        for _ in range(runs):
            rates["one"].append(await _throughput(one + path, headers, clients=50, seconds=10))
            rates["two"].append(await _throughput(two + path, headers, clients=50, seconds=10))
        one_rate, two_rate = statistics.median(rates["one"]), statistics.median(rates["two"])
        table[path] = {
            "one_worker_rps": round(one_rate),
            "two_workers_rps": round(two_rate),
            "ratio": round(two_rate / one_rate, 2),
        }
    return table


def _read_requests(cursor: str, make: str, depth: int) -> dict[str, str]:
    return {
        "first page": "/detections?limit=50",
        "one make": f"/detections?limit=50&make={quote(make)}",
        f"cursor page at {depth:,}": f"/detections?limit=50&cursor={cursor}",
        "stats": "/stats",
    }


@asynccontextmanager
async def _bare_endpoint(database: str) -> AsyncIterator[str]:
    """bench/bare_api.py as its own process, over the same database: the limit beside the
    API, with its two queries and its JSON and nothing else."""
    port = free_port()
    process = start_bare_api(port, database)
    url = f"http://127.0.0.1:{port}"
    try:
        await api_ready(url, path="/stats", within=30)
        yield url
    finally:
        stop(process)
