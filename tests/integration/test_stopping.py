"""An indexer whose database has gone silent mid-request (no answer, no closed connection: a
frozen server, a dropped route) says it is not ready, and asked to stop exits within its
grace, naming what it waited on; the next run stores what it left, and nothing twice."""

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from roadwatch.bootstrap.stores import detection_store
from roadwatch.infra.postgres import PostgresService
from roadwatch.stores.detection_store import DetectionStore
from tests.helpers.kafka import send_values, stream_settings
from tests.helpers.metrics import samples
from tests.helpers.ports import free_port
from tests.helpers.processes import children_of, start_indexer_process, stopped_exit_code
from tests.helpers.servers import Servers, own_postgres, unique
from tests.helpers.stored import stored_at_least
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

BATCH = 400


@pytest.mark.timeout(300)
async def test_an_indexer_stopped_while_its_database_is_silent_exits_in_time_and_loses_nothing(
    servers: Servers, tmp_path: Path
) -> None:
    async with own_postgres(tmp_path / "state") as database:
        settings = await stream_settings(servers, store_url=database.url("roadwatch"))
        store = detection_store(settings.detections_db_url)
        await store.open()
        log, group = tmp_path / "indexer.log", unique("indexers")
        port = free_port()
        indexer = start_indexer_process(settings, group=group, log=log, metrics_port=port)
        try:
            await _send(settings.kafka_broker_url, settings.detections_topic, first=0)
            await eventually(
                lambda: stored_at_least(store, BATCH), within=60, what="the first stored"
            )
            with _frozen(database):
                await _send(settings.kafka_broker_url, settings.detections_topic, first=BATCH)
                await eventually(
                    lambda: _batch_open_for(port, 2), within=30, what="a batch held mid-write"
                )
                # No error to retry, only a batch growing old: readiness says so past 30 s.
                await eventually(
                    lambda: _progress_says(port, "a step is silent"), within=60, what="not ready"
                )
                code = await asyncio.to_thread(stopped_exit_code, indexer, log, timeout=40)
        finally:
            if indexer.poll() is None:
                indexer.kill()
        text = log.read_text()
        assert code == 1, text[-3000:]
        unfinished = [line for line in text.splitlines() if "stopped unfinished" in line]
        assert len(unfinished) == 1, text[-3000:]
        assert "15 s after SIGTERM" in unfinished[0]
        assert "Persist" in unfinished[0], unfinished[0]

        again = start_indexer_process(settings, group=group, log=log)
        try:
            await eventually(
                lambda: stored_at_least(store, 2 * BATCH), within=60, what="the rest stored"
            )
        finally:
            assert await asyncio.to_thread(stopped_exit_code, again, log) == 0
        await _assert_each_once(store, 2 * BATCH)
        await store.close()


async def _batch_open_for(port: int, seconds: float) -> bool:
    """Whether the indexer has held a batch, read and not committed, for `seconds`."""
    async with httpx.AsyncClient(timeout=5) as client:
        page = await client.get(f"http://127.0.0.1:{port}/metrics")
    return samples(page.text)[("roadwatch_oldest_open_batch_seconds", ())] >= seconds


async def _progress_says(port: int, words: str) -> bool:
    async with httpx.AsyncClient(timeout=10) as client:
        page = await client.get(f"http://127.0.0.1:{port}/readyz")
    return page.status_code == 503 and words in page.json()["checks"]["progress"]


async def _send(bootstrap: str, topic: str, *, first: int) -> None:
    values = [
        orjson.dumps({"Year": 2011, "Make": "Toyota", "Model": f"m{n}", "Category": "Sedan"})
        for n in range(first, first + BATCH)
    ]
    await send_values(bootstrap, topic, values)


@contextlib.contextmanager
def _frozen(database: PostgresService) -> Iterator[None]:
    """Every process of the server stopped (SIGSTOP): connections stay open, and silent."""
    postmaster = database.daemon.pid()
    assert postmaster is not None
    pids = [postmaster, *children_of(postmaster)]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


async def _assert_each_once(store: DetectionStore, count: int) -> None:
    stored = await store.list(limit=count + 100)
    assert len(stored) == count
    assert len({(d.source.partition, d.source.offset) for d in stored}) == count
