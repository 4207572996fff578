"""Kafka restarted in the middle of a stream: the indexer and the API's alert stream recover
by themselves, and nothing is lost."""

import asyncio
import random
import shutil
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from roadwatch.bootstrap.stores import detection_store
from roadwatch.catalog.producer import DetectionProducer
from roadwatch.catalog.vehicles import Vehicle
from roadwatch.stores.detection_store import DetectionStore
from tests.helpers.metrics import samples
from tests.helpers.own_broker import own_broker
from tests.helpers.ports import free_port
from tests.helpers.processes import FIRST_USER, indexer_running, start_api
from tests.helpers.servers import Servers, unique
from tests.helpers.sse import read_events
from tests.helpers.stored import stored_at_least
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

VEHICLES = [
    Vehicle(2018, "Jeep", "Wrangler", "SUV"),
    *[Vehicle(2012, "Honda", "Civic", "Sedan")] * 9,
]


@pytest.mark.timeout(600)
async def test_a_broker_restart_mid_stream_loses_nothing(
    servers: Servers, postgres_database: str, tmp_path: Path
) -> None:
    kafka, settings = own_broker(servers.settings, tmp_path / "state", prefix="restart")
    settings = settings.model_copy(
        update={"detections_db_url": postgres_database, "users_db_url": postgres_database}
    )
    await kafka.up()
    api = await asyncio.to_thread(start_api, settings, port=free_port(), log=tmp_path / "api.log")
    store = detection_store(postgres_database)
    await store.open()
    produced = 2_000
    try:
        async with (
            # No read timeout: the alert stream may rightly stay quiet while Kafka restarts.
            httpx.AsyncClient(base_url=api.url, timeout=httpx.Timeout(10, read=None)) as client,
            indexer_running(settings, group=unique("group")),
        ):
            await client.post(
                "/users",
                json={"username": "admin", "password": "a long password"},
                headers=FIRST_USER,
            )
            token = (
                await client.post(
                    "/token", data={"username": "admin", "password": "a long password"}
                )
            ).json()["access_token"]
            alert_ids: list[str] = []

            async def follow() -> None:
                headers = {"Authorization": f"Bearer {token}"}
                async with client.stream("GET", "/alerts", headers=headers) as response:
                    async for event in read_events(response):
                        if event.event == "alert":
                            alert_ids.append(orjson.loads(event.data)["id"])

            follower = asyncio.create_task(follow())

            async def following() -> bool:
                metrics = samples((await client.get("/metrics")).text)
                return metrics.get(("roadwatch_sse_clients", ()), 0) >= 1

            await eventually(following, within=30, what="the alert stream subscribed")
            stream = asyncio.create_task(_produce(settings.kafka_broker_url, produced))
            await eventually(lambda: _stored_over(store, 300), within=60, what="indexing")

            await asyncio.to_thread(kafka.down)
            await asyncio.sleep(5)
            await kafka.up()

            await stream
            await eventually(
                lambda: _stored_over(store, produced - 1), within=120, what="everything stored"
            )
            stored = await store.list(limit=produced + 10)
            suspicious = {str(d.id) for d in stored if d.category == "SUV"}

            async def all_alerts_arrived() -> bool:
                return set(alert_ids) >= suspicious

            await eventually(all_alerts_arrived, within=60, what="every alert on the stream")
            follower.cancel()
        assert len(stored) == produced
        assert set(alert_ids) == suspicious
        assert await store.count_by_make() == await store.group_by_make()
    finally:
        await store.close()
        api.stop()
        kafka.down()
        shutil.rmtree(tmp_path / "state", ignore_errors=True)


async def _produce(bootstrap: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        stats = await DetectionProducer(
            producer, topic="restart.detections", vehicles=VEHICLES, rng=random.Random(5)
        ).run(rate=200, count=count, stop=asyncio.Event())
    finally:
        await producer.stop()
    assert stats.acknowledged == count, stats.errors


async def _stored_over(store: DetectionStore, count: int) -> bool:
    return await stored_at_least(store, count + 1)
