"""Detections and counts through HTTP, for each store: pages, cursors, filters, bad input."""

import orjson
import pytest

from tests.helpers.api_stack import SEDAN, SUV, Stack
from tests.helpers.kafka import send_values
from tests.helpers.processes import indexer_running
from tests.helpers.stored import stored_at_least
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_detections_page_by_page_and_stats_equal_to_a_group_by(stack: Stack) -> None:
    produced = 1234
    messages = [orjson.dumps(SUV if i % 4 == 0 else SEDAN) for i in range(produced)]
    async with indexer_running(stack.settings, group=stack.indexer_group):
        await send_values(
            stack.settings.kafka_broker_url, stack.settings.detections_topic, messages
        )
        await eventually(
            lambda: stored_at_least(stack.store, produced), within=60, what="all stored"
        )
    expected = [str(d.id) for d in await stack.store.list(limit=produced + 1)]

    seen: list[str] = []
    for skip in range(0, produced + 100, 100):
        page = await stack.client.get(
            "/detections", params={"skip": skip, "limit": 100}, headers=stack.admin_headers
        )
        assert page.status_code == 200
        body = page.json()
        assert body["total"] == produced
        assert (body["skip"], body["limit"]) == (skip, 100)
        seen += [item["id"] for item in body["items"]]
    assert seen == expected

    by_cursor: list[str] = []
    params: dict[str, str | int] = {"limit": 333}
    while True:
        body = (
            await stack.client.get("/detections", params=params, headers=stack.admin_headers)
        ).json()
        by_cursor += [item["id"] for item in body["items"]]
        if body["next_cursor"] is None:
            break
        params = {"limit": 333, "cursor": body["next_cursor"]}
    assert by_cursor == expected

    jeeps = await stack.client.get(
        "/detections",
        params={"make": "Jeep", "category": "SUV", "limit": 1000},
        headers=stack.admin_headers,
    )
    assert jeeps.json()["total"] == len(jeeps.json()["items"]) == (produced + 3) // 4
    item = jeeps.json()["items"][0]
    assert set(item) == {"id", "timestamp", "year", "make", "model", "category"}
    assert (item["year"], item["make"], item["model"]) == (2018, "Jeep", "Wrangler")

    stats = await stack.client.get("/stats", headers=stack.admin_headers)
    assert stats.json() == await stack.store.group_by_make()
    assert list(stats.json().items()) == [
        ("Honda", produced - (produced + 3) // 4),
        ("Jeep", (produced + 3) // 4),
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 5000},
        {"skip": "abc"},
        {"skip": -1},
        {"cursor": "garbage!"},
        {"year": "old"},
        {"since": "last tuesday"},
        {"make": ""},
        {"make": "a\x00b"},
    ],
)
async def test_invalid_parameters_are_a_422(stack: Stack, params: dict[str, str | int]) -> None:
    response = await stack.client.get("/detections", params=params, headers=stack.admin_headers)
    assert response.status_code == 422
    assert response.json()["detail"]


async def test_an_operator_shaped_filter_matches_nothing(stack: Stack) -> None:
    response = await stack.client.get(
        "/detections", params={"make": '{"$ne": null}'}, headers=stack.admin_headers
    )
    assert response.status_code == 200
    assert response.json()["items"] == []
