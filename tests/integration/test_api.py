"""The Detections API through HTTP, against the real stores and broker, for each store."""

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import orjson
import pytest

from roadwatch.bootstrap import detection_store
from roadwatch.settings import Settings
from roadwatch.stores.base import DetectionFilter, DetectionStore
from tests.api_process import TEST_JWT_SECRET, ApiProcess, start_api
from tests.conftest import Servers, fresh_mongo_database_url, fresh_postgres_database, unique
from tests.helpers.metrics import samples
from tests.helpers.ports import free_port
from tests.sse import Event, read_events
from tests.streams import eventually, indexer_running, send_values, stream_settings

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

ADMIN = {"username": "admin", "password": "correct horse battery staple"}
SUV = {"Year": 2018, "Make": "Jeep", "Model": "Wrangler", "Category": "SUV"}
SEDAN = {"Year": 2012, "Make": "Honda", "Model": "Civic", "Category": "Sedan"}


@dataclass
class Stack:
    api: ApiProcess
    settings: Settings
    store: DetectionStore
    client: httpx.AsyncClient
    admin_headers: dict[str, str]
    # One indexer group for the module: each test's indexer resumes where the last one was.
    indexer_group: str


@pytest.fixture(
    scope="module",
    params=[pytest.param("postgres"), pytest.param("mongo", marks=pytest.mark.mongo)],
)
async def stack(
    request: pytest.FixtureRequest, servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    async with (
        fresh_postgres_database(servers) as users_url,
        fresh_postgres_database(servers) as postgres_store_url,
    ):
        store_url = (
            postgres_store_url if request.param == "postgres" else fresh_mongo_database_url(servers)
        )
        settings = (await stream_settings(servers, store_url=store_url)).model_copy(
            # schemathesis logs in many times from this one address.
            update={"users_db_url": users_url, "login_attempts_per_address": "10000/minute"}
        )
        log = tmp_path_factory.mktemp("api") / "api.log"
        api = await asyncio.to_thread(start_api, settings, port=free_port(), log=log)
        store = detection_store(store_url)
        await store.open()
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            created = await client.post("/users", json=ADMIN)
            assert created.status_code == 201, created.text
            token = await _login(client, ADMIN["username"], ADMIN["password"])
            try:
                yield Stack(
                    api,
                    settings,
                    store,
                    client,
                    {"Authorization": f"Bearer {token}"},
                    indexer_group=unique("group"),
                )
            finally:
                await store.close()
                assert await asyncio.to_thread(api.stop), api.log.read_text()[-3000:]


async def _login(client: httpx.AsyncClient, username: str, password: str) -> str:
    response = await client.post("/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] > 0
    return str(body["access_token"])


async def test_the_first_user_is_an_administrator_and_then_users_need_one(stack: Stack) -> None:
    me = await stack.client.get("/users/me", headers=stack.admin_headers)
    assert me.status_code == 200
    assert me.json()["username"] == "admin"
    assert me.json()["is_admin"] is True
    assert "password" not in me.text

    anonymous = await stack.client.post(
        "/users", json={"username": "mallory", "password": "an uncommon passphrase"}
    )
    assert anonymous.status_code == 401

    name = unique("operator")
    created = await stack.client.post(
        "/users",
        json={"username": name, "password": "a long enough secret"},
        headers=stack.admin_headers,
    )
    assert created.status_code == 201
    assert set(created.json()) == {"id", "username", "is_admin", "created_at", "disabled"}
    assert created.json()["is_admin"] is False
    uuid.UUID(created.json()["id"])

    again = await stack.client.post(
        "/users",
        json={"username": name, "password": "another long secret"},
        headers=stack.admin_headers,
    )
    assert again.status_code == 409
    assert name in again.json()["detail"]

    operator = {
        "Authorization": f"Bearer {await _login(stack.client, name, 'a long enough secret')}"
    }
    refused = await stack.client.post(
        "/users",
        json={"username": unique("eve"), "password": "an uncommon passphrase"},
        headers=operator,
    )
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "ok-name", "password": "pw-7Qz"}, "password"),
        ({"username": "no spaces allowed", "password": "long enough password"}, "username"),
        ({"username": "ab", "password": "long enough password"}, "username"),
        ({"username": "-dash-first", "password": "long enough password"}, "username"),
    ],
)
async def test_a_weak_password_or_malformed_username_is_a_422_naming_the_rule(
    stack: Stack, body: dict[str, str], field: str
) -> None:
    response = await stack.client.post("/users", json=body, headers=stack.admin_headers)
    assert response.status_code == 422
    problems = response.json()["detail"]
    assert [problem["loc"][-1] for problem in problems] == [field]
    assert problems[0]["msg"]
    assert body["password"] not in response.text


def _token(claims: dict[str, object], *, key: str = TEST_JWT_SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


async def test_every_bad_token_is_a_401(stack: Stack) -> None:
    me = (await stack.client.get("/users/me", headers=stack.admin_headers)).json()
    now = int(time.time())
    good = {"sub": me["id"], "ver": 0, "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}
    valid = _token(good)
    header, payload, signature = valid.split(".")
    unsigned = jwt.encode(good, None, algorithm="none")
    bad_tokens = {
        "expired": _token({**good, "iat": now - 120, "exp": now - 60}),
        "tampered": f"{header}.{payload[:-2]}xy.{signature}",
        "wrong key": _token(good, key="some-other-secret-that-is-long-enough-000"),
        "alg none": unsigned,
        "HS512": _token(good, alg="HS512"),
        "no jti": _token({k: v for k, v in good.items() if k != "jti"}),
        "no version": _token({k: v for k, v in good.items() if k != "ver"}),
        "an old version": _token({**good, "ver": -1}),
        "a version that is no number": _token({**good, "ver": "0"}),
        "unknown user": _token({**good, "sub": str(uuid.uuid4())}),
        "garbage": "not-a-jwt",
    }
    assert (
        await stack.client.get("/users/me", headers={"Authorization": f"Bearer {valid}"})
    ).status_code == 200
    for name, token in bad_tokens.items():
        for path in ("/users/me", "/detections", "/stats", "/alerts"):
            response = await stack.client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, (name, path)
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["detail"]
    for path in ("/users/me", "/detections", "/stats", "/alerts"):
        assert (await stack.client.get(path)).status_code == 401


async def test_repeated_failed_logins_are_refused_for_a_while(stack: Stack) -> None:
    name = unique("target")
    await stack.client.post(
        "/users",
        json={"username": name, "password": "the right password"},
        headers=stack.admin_headers,
    )
    codes = []
    for _ in range(6):
        response = await stack.client.post("/token", data={"username": name, "password": "wrong!"})
        codes.append(response.status_code)
    assert codes == [401] * 5 + [429]
    right = await stack.client.post(
        "/token", data={"username": name, "password": "the right password"}
    )
    assert right.status_code == 429
    assert int(right.headers["retry-after"]) > 0


async def test_detections_page_by_page_and_stats_equal_to_a_group_by(stack: Stack) -> None:
    produced = 1234
    messages = [orjson.dumps(SUV if i % 4 == 0 else SEDAN) for i in range(produced)]
    async with indexer_running(stack.settings, group=stack.indexer_group):
        await send_values(
            stack.settings.kafka_broker_url, stack.settings.detections_topic, messages
        )
        await eventually(
            lambda: _stored_at_least(stack.store, produced), within=60, what="all stored"
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


@pytest.mark.parametrize("event_id", ["garbage", "0:-1", "1:2,x", ":", "0:1:2"])
async def test_a_last_event_id_this_api_did_not_issue_is_a_422(stack: Stack, event_id: str) -> None:
    answer = await stack.client.get(
        "/alerts", headers={**stack.admin_headers, "Last-Event-ID": event_id}
    )
    assert answer.status_code == 422
    assert "Last-Event-ID" in answer.json()["detail"]


async def test_an_unknown_route_is_a_json_404(stack: Stack) -> None:
    response = await stack.client.get("/nowhere")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


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


async def _stored_at_least(store: DetectionStore, count: int) -> bool:
    return await store.count() >= count


async def _stored_at_least_model(store: DetectionStore, model: str) -> bool:
    return await store.count(DetectionFilter(model=model)) > 0


async def test_schemathesis_finds_no_server_error_and_no_response_off_schema(
    stack: Stack, tmp_path: Path
) -> None:
    token = stack.admin_headers["Authorization"]
    result = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{stack.api.url}/openapi.json",
        "--header",
        f"Authorization: {token}",
        "--exclude-path",
        "/alerts",
        "--exclude-path",
        "/token",
        "--checks",
        "all",
        # A cursor is an opaque token: a well-formed string the API did not issue is a 422,
        # which this check would count as rejecting valid input.
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        "40",
        "--seed",
        "1",
        "--report-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await result.communicate()
    assert result.returncode == 0, output.decode()[-6000:]


async def test_metrics_time_requests_by_route_and_count_alert_clients(stack: Stack) -> None:
    await stack.client.get("/detections", params={"limit": 1}, headers=stack.admin_headers)
    await stack.client.get("/detections", params={"limit": 0}, headers=stack.admin_headers)
    async with stack.client.stream("GET", "/alerts", headers=stack.admin_headers) as live:
        assert live.status_code == 200
        during = samples((await stack.client.get("/metrics")).text)

    def requests(route: str, status: str) -> float:
        key = (
            "roadwatch_http_request_seconds_count",
            (("method", "GET"), ("route", route), ("status", status)),
        )
        return during.get(key, 0)

    assert requests("/detections", "200") >= 1
    assert requests("/detections", "422") >= 1
    assert during[("roadwatch_sse_clients", ())] >= 1
    assert ("roadwatch_sse_clients_dropped_total", ()) in during
