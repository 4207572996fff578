"""Alerts through HTTP, for each store: live, resumed, and a bad Last-Event-ID."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest

from roadwatch.settings import Settings
from roadwatch.stores.detection_store import DetectionFilter, DetectionStore
from tests.helpers.api_stack import SUV, Stack
from tests.helpers.kafka import send_values
from tests.helpers.processes import indexer_running
from tests.helpers.sse import Event, read_events
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.mark.parametrize("event_id", ["garbage", "0:-1", "1:2,x", ":", "0:1:2"])
async def test_a_last_event_id_this_api_did_not_issue_is_a_422(stack: Stack, event_id: str) -> None:
    answer = await stack.client.get(
        "/alerts", headers={**stack.admin_headers, "Last-Event-ID": event_id}
    )
    assert answer.status_code == 422
    assert "Last-Event-ID" in answer.json()["detail"]


async def test_alerts_arrive_live_and_a_reconnect_gets_exactly_what_it_missed(
    stack: Stack,
) -> None:
    settings = stack.settings
    async with indexer_running(settings, group=stack.indexer_group):
        first = await _alerts(stack, count=1, during=lambda: _produce_suvs(settings, "A"))
        assert [orjson.loads(e.data)["model"] for e in first] == ["A"]
        assert first[0].event == "alert"
        assert first[0].id

        # Missed while disconnected.
        await _produce_suvs(settings, "B", "C", "D")
        await eventually(lambda: _stored_at_least_model(stack.store, "D"), within=30, what="D")
        resumed = await _alerts(
            stack, count=4, last_event_id=first[0].id, during=lambda: _produce_suvs(settings, "E")
        )
    # Alerts are keyed by detection id, so they spread over partitions: no order across them.
    assert sorted(orjson.loads(e.data)["model"] for e in resumed) == ["B", "C", "D", "E"]
    assert len({e.id for e in resumed}) == 4


async def test_a_stream_opens_with_its_position_so_a_reconnect_before_any_alert_misses_none(
    stack: Stack,
) -> None:
    settings = stack.settings
    async with stack.client.stream("GET", "/alerts", headers=stack.admin_headers) as response:
        opening = await asyncio.wait_for(anext(read_events(response, positions=True)), 15)
    assert opening.event == "position"
    assert opening.id
    # Lost before any alert came; what was raised meanwhile is there on reconnecting.
    async with indexer_running(settings, group=stack.indexer_group):
        await _produce_suvs(settings, "P", "Q")
        await eventually(lambda: _stored_at_least_model(stack.store, "Q"), within=30, what="Q")
        resumed = await _alerts(stack, count=2, last_event_id=opening.id, during=_nothing)
    assert sorted(orjson.loads(e.data)["model"] for e in resumed) == ["P", "Q"]


async def _nothing() -> None:
    pass


async def _alerts(
    stack: Stack,
    *,
    count: int,
    during: Callable[[], Awaitable[None]],
    last_event_id: str | None = None,
) -> list[Event]:
    headers = dict(stack.admin_headers)
    if last_event_id:
        headers["Last-Event-ID"] = last_event_id
    events: list[Event] = []
    async with stack.client.stream("GET", "/alerts", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = read_events(response)
        await during()
        async with asyncio.timeout(30):
            async for event in reader:
                events.append(event)
                if len(events) == count:
                    break
        # Nothing more than expected arrives.
        extra = await _next_within(reader, seconds=1.5)
        assert extra is None, f"an event beyond the {count} expected: {extra}"
    return events


async def _next_within(reader: AsyncIterator[Event], *, seconds: float) -> Event | None:
    try:
        async with asyncio.timeout(seconds):
            return await anext(reader)
    except TimeoutError:
        return None


async def _produce_suvs(settings: Settings, *models: str) -> None:
    await send_values(
        settings.kafka_broker_url,
        settings.detections_topic,
        [orjson.dumps({**SUV, "Model": model}) for model in models],
        key=b"one-partition-keeps-their-order",
    )


async def _stored_at_least_model(store: DetectionStore, model: str) -> bool:
    return await store.count(DetectionFilter(model=model)) > 0
