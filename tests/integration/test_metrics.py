"""Metrics and health of the indexer and the API, read as Prometheus and a prober would."""

import asyncio
import signal
from pathlib import Path

import httpx
import orjson
import pytest

from roadwatch.bootstrap.stores import detection_store
from tests.helpers.kafka import send_values, stream_settings
from tests.helpers.metrics import samples
from tests.helpers.ports import free_port
from tests.helpers.processes import start_indexer_process
from tests.helpers.servers import Servers, unique
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

SUV = {"Year": 2018, "Make": "Jeep", "Model": "Wrangler", "Category": "SUV"}
SEDAN = {"Year": 2012, "Make": "Honda", "Model": "Civic", "Category": "Sedan"}


async def test_the_indexer_counts_what_it_consumed_stored_rejected_and_alerted(
    servers: Servers, postgres_database: str, tmp_path: Path
) -> None:
    settings = await stream_settings(servers, store_url=postgres_database)
    port = free_port()
    indexer = start_indexer_process(
        settings, group=unique("group"), log=tmp_path / "indexer.log", metrics_port=port
    )
    store = detection_store(postgres_database)
    await store.open()
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:

            async def serving() -> bool:
                try:
                    return (await client.get("/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(serving, within=30, what="the indexer's health port answering")
            messages = [orjson.dumps(SUV)] * 30 + [orjson.dumps(SEDAN)] * 70 + [b"oops"] * 3
            await send_values(settings.kafka_broker_url, settings.detections_topic, messages)

            async def counted() -> bool:
                text = (await client.get("/metrics")).text
                return samples(text).get(("roadwatch_detections_consumed_total", ()), 0) == 103

            await eventually(counted, within=30, what="103 records counted")
            found = samples((await client.get("/metrics")).text)
            assert (await client.get("/healthz")).json() == {"status": "alive"}
    finally:
        indexer.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(indexer.wait, 30) == 0
        await store.close()

    assert found[("roadwatch_detections_stored_total", ())] == 100
    assert found[("roadwatch_alerts_published_total", ())] == 30
    assert found[("roadwatch_detections_rejected_total", (("reason", "not_json"),))] == 3
    assert found[("roadwatch_batch_size_count", ())] >= 1
    assert found[("roadwatch_store_write_seconds_count", ())] >= 1
    lags = [value for (name, _labels), value in found.items() if name == "roadwatch_consumer_lag"]
    assert lags
    assert all(lag == 0 for lag in lags)
