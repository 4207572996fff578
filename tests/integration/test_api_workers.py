"""`roadwatch api --workers 2`: two processes on one port, whose /metrics counts what both
answered, and whose /alerts clients each get every alert and resume by Last-Event-ID on
whichever worker they reach."""

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest

from roadwatch.alerts import encode_alert
from roadwatch.domain import Alert
from roadwatch.settings import Settings
from tests.helpers.api_stack import ADMIN, bearer
from tests.helpers.factories import make_detection
from tests.helpers.kafka import send_values, stream_settings
from tests.helpers.metrics import Samples, samples
from tests.helpers.ports import free_port
from tests.helpers.processes import FIRST_USER, ApiProcess, start_api
from tests.helpers.servers import Servers, fresh_postgres_database
from tests.helpers.sse import Event, read_events
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

REQUESTS = 30


@dataclass
class Workers:
    api: ApiProcess
    settings: Settings

    async def metrics(self) -> Samples:
        async with httpx.AsyncClient(base_url=self.api.url, timeout=10) as client:
            return samples((await client.get("/metrics")).text)


@pytest.fixture
async def two_workers(servers: Servers, tmp_path: Path) -> AsyncIterator[Workers]:
    async with fresh_postgres_database(servers) as url:
        settings = (await stream_settings(servers, store_url=url)).model_copy(
            update={"users_db_url": url}
        )
        log = tmp_path / "api.log"
        api = await asyncio.to_thread(start_api, settings, port=free_port(), log=log, workers=2)
        try:
            yield Workers(api, settings)
        finally:
            api.stop()


def _children(api: ApiProcess) -> set[int]:
    pid = api.process.pid
    return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}


async def test_every_scrape_of_metrics_counts_the_requests_of_both_workers(
    two_workers: Workers,
) -> None:
    url = two_workers.api.url
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        assert (await client.post("/users", json=ADMIN, headers=FIRST_USER)).status_code == 201
        headers = await bearer(client, ADMIN)
    assert len(_children(two_workers.api)) >= 2

    # A connection each, so that the requests spread over the workers as the kernel hands
    # out connections; and so do the scrapes.
    for _ in range(REQUESTS):
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            assert (await client.get("/stats", headers=headers)).status_code == 200
    key = (
        "roadwatch_http_request_seconds_count",
        (("method", "GET"), ("route", "/stats"), ("status", "200")),
    )
    for _ in range(10):
        assert (await two_workers.metrics())[key] == REQUESTS


async def test_each_client_gets_every_alert_and_resumes_on_any_worker(
    two_workers: Workers,
) -> None:
    settings, url = two_workers.settings, two_workers.api.url
    alerts = [Alert(make_detection(), ()) for _ in range(3)]
    ids = [str(alert.detection.id) for alert in alerts]
    async with httpx.AsyncClient(base_url=url, timeout=30) as admin_client:
        assert (
            await admin_client.post("/users", json=ADMIN, headers=FIRST_USER)
        ).status_code == 201
        headers = await bearer(admin_client, ADMIN)

    async def follow(count: int, last_event_id: str | None = None) -> list[Event]:
        sent = {**headers, **({"Last-Event-ID": last_event_id} if last_event_id else {})}
        async with (
            httpx.AsyncClient(base_url=url, timeout=30) as client,
            client.stream("GET", "/alerts", headers=sent) as response,
        ):
            assert response.status_code == 200
            events = []
            async for event in read_events(response):
                if event.event == "alert":
                    events.append(event)
                    if len(events) == count:
                        return events
        raise AssertionError("the stream ended")

    # Four clients, each on its own connection: with two workers, both have some.
    clients = [asyncio.create_task(follow(2)) for _ in range(4)]

    async def all_following() -> bool:
        # The gauge is summed over the live workers.
        return (await two_workers.metrics()).get(("roadwatch_sse_clients", ())) == 4

    await eventually(all_following, within=15, what="four clients following")
    topic, key = settings.alerts_topic, b"one partition, one order"
    await send_values(settings.kafka_broker_url, topic, map(encode_alert, alerts[:2]), key=key)
    received = await asyncio.wait_for(asyncio.gather(*clients), timeout=30)
    for events in received:
        assert [orjson.loads(event.data)["id"] for event in events] == ids[:2]

    # Having seen the first alert, a client reconnects (to either worker) and gets the rest.
    await send_values(settings.kafka_broker_url, topic, [encode_alert(alerts[2])], key=key)
    for _ in range(4):
        resumed = await asyncio.wait_for(follow(2, received[0][0].id), timeout=30)
        assert [orjson.loads(event.data)["id"] for event in resumed] == ids[1:]
