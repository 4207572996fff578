"""Watchlist rules through the API: validated, recorded, and live in every indexer (on each
store)."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from roadwatch.bootstrap.clients import rules_consumer
from roadwatch.bootstrap.stores import detection_store
from roadwatch.settings import Settings
from roadwatch.stores.detection_store import AlertFilter, DetectionFilter
from roadwatch.stores.watchlists_postgres import WATCHLIST_LOCK, PostgresWatchlistStore
from roadwatch.watchlists.registry import Watchlists
from roadwatch.watchlists.rules import SEED_ID, Rule, rule_to_json, seed_rule
from roadwatch.watchlists.topic import RulePublisher, read_rules
from tests.helpers.api_stack import AdminStack, admin_stack
from tests.helpers.kafka import (
    group_caught_up,
    read_topic,
    send_to_every_partition,
    send_values,
    stream_settings,
    value_of,
)
from tests.helpers.processes import indexer_running
from tests.helpers.servers import Servers, unique
from tests.helpers.sse import Event, read_events
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

LADA = {"Year": 1985, "Make": "Lada", "Model": "Niva", "Category": "Hatchback"}
PARTITIONS = 6


Stack = AdminStack


@pytest.fixture(scope="module")
async def stack(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """One API for the module: the rules live in its users' database and topic."""
    async with admin_stack(servers, log=tmp_path_factory.mktemp("api") / "api.log") as stack:
        yield stack


async def test_the_seed_rule_is_created_at_first_start_from_suspicious_vehicle(
    stack: Stack,
) -> None:
    page = (await stack.client.get("/watchlists", headers=stack.operator)).json()
    [seed] = [rule for rule in page["items"] if rule["id"] == str(SEED_ID)]
    assert seed["id"] == str(SEED_ID)
    assert seed["name"] == "suspicious-vehicle"
    assert seed["categories"] == ["suv"]
    assert seed["created_by"] is None


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"name": "nothing set"}, "at least one"),
        ({"name": "reversed", "year_from": 2010, "year_to": 2000}, "after year_to"),
        ({"name": "composite", "categories": ["SUV, Wagon"]}, "categories"),
        ({"name": "nul\x00", "make": "Ford"}, "control character"),
        ({"name": "", "make": "Ford"}, "name"),
        ({"name": "x" * 101, "make": "Ford"}, "name"),
        ({"name": "stringly", "make": "Ford", "year_from": "2000"}, "year_from"),
        ({"name": "ancient", "year_from": 1000}, "year_from"),
        ({"name": "extra", "make": "Ford", "plate": "ABC123"}, "plate"),
        ({"name": "many", "categories": [f"c{i}" for i in range(51)]}, "categories"),
    ],
)
async def test_an_invalid_rule_is_a_422_naming_the_problem(
    stack: Stack, body: dict[str, Any], problem: str
) -> None:
    before = (await stack.client.get("/watchlists", headers=stack.admin)).json()
    response = await stack.client.post("/watchlists", json=body, headers=stack.admin)
    assert response.status_code == 422, response.text
    assert problem in response.text
    assert (await stack.client.get("/watchlists", headers=stack.admin)).json() == before


async def test_only_administrators_change_rules_and_every_change_is_recorded(
    stack: Stack,
) -> None:
    body = {"name": "Old Jeeps", "make": "Jeep", "year_to": 1999}
    assert (await stack.client.post("/watchlists", json=body)).status_code == 401
    assert (
        await stack.client.post("/watchlists", json=body, headers=stack.operator)
    ).status_code == 403

    created = await stack.client.post("/watchlists", json=body, headers=stack.admin)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["created_by"] == "admin"
    assert (rule["make"], rule["year_to"], rule["enabled"]) == ("Jeep", 1999, True)

    clash = {**body, "name": "old jeeps"}
    assert (
        await stack.client.post("/watchlists", json=clash, headers=stack.admin)
    ).status_code == 409

    path = f"/watchlists/{rule['id']}"
    assert (
        await stack.client.patch(path, json={"enabled": False}, headers=stack.operator)
    ).status_code == 403
    emptied = await stack.client.patch(
        path, json={"make": None, "year_to": None}, headers=stack.admin
    )
    assert emptied.status_code == 422, emptied.text
    null_name = await stack.client.patch(path, json={"name": None}, headers=stack.admin)
    assert null_name.status_code == 422
    changed = await stack.client.patch(
        path, json={"enabled": False, "model": "Cherokee"}, headers=stack.admin
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["enabled"], changed.json()["model"]) == (False, "Cherokee")
    assert changed.json()["updated_by"] == "admin"
    assert (await stack.client.get(path, headers=stack.operator)).json() == changed.json()

    assert (await stack.client.delete(path, headers=stack.operator)).status_code == 403
    assert (await stack.client.delete(path, headers=stack.admin)).status_code == 204
    assert (await stack.client.delete(path, headers=stack.admin)).status_code == 404
    assert (await stack.client.get(path, headers=stack.admin)).status_code == 404
    missing = f"/watchlists/{uuid.uuid4()}"
    assert (
        await stack.client.patch(missing, json={"enabled": True}, headers=stack.admin)
    ).status_code == 404

    store = PostgresWatchlistStore(stack.users_url)
    await store.open()
    try:
        history = await store.changes(uuid.UUID(rule["id"]))
    finally:
        await store.close()
    assert [(c["change"], c["changed_by"]) for c in history] == [
        ("created", "admin"),
        ("updated", "admin"),
        ("deleted", "admin"),
    ]
    # The same record through the API, for administrators, the deleted rule's too.
    changes = {"rule": rule["id"]}
    listing = "/watchlist-changes"
    refused = await stack.client.get(listing, params=changes, headers=stack.operator)
    assert refused.status_code == 403
    recorded = (await stack.client.get(listing, params=changes, headers=stack.admin)).json()
    assert {c["rule_id"] for c in recorded} == {rule["id"]}
    assert [(c["change"], c["changed_by"]) for c in recorded] == [
        ("created", "admin"),
        ("updated", "admin"),
        ("deleted", "admin"),
    ]
    assert recorded[1]["rule"]["model"] == "Cherokee"
    assert recorded[2]["rule"] is None


@pytest.mark.slow
async def test_a_rule_goes_live_in_two_indexers_stops_when_disabled_and_stays_deleted(
    stack: Stack, servers: Servers, store_url: str
) -> None:
    # Topics and a store of the test's own; the rules are the API's.
    settings = (await stream_settings(servers, store_url=store_url)).model_copy(
        update={"watchlists_topic": stack.settings.watchlists_topic}
    )
    group = unique("group")
    rule = {"name": "Nivas", "make": "lada", "model": "NIVA", "year_from": 1977}
    async with _two_indexers(settings, group) as registries:
        await _rules_in_force(registries, 1)  # the seed rule

        created = await stack.client.post("/watchlists", json=rule, headers=stack.admin)
        assert created.status_code == 201
        rule_id = created.json()["id"]
        await _rules_in_force(registries, 2)
        await _send_nivas(settings, marked="live")
        await eventually(
            lambda: _nivas_alerted(settings, PARTITIONS), within=30, what="an alert per partition"
        )

        path = f"/watchlists/{rule_id}"
        disabled = await stack.client.patch(path, json={"enabled": False}, headers=stack.admin)
        assert disabled.status_code == 200
        await _rules_in_force(registries, 1)
        await _send_nivas(settings, marked="disabled")
        await eventually(
            lambda: _stored_marked(store_url, "disabled"), within=30, what="the disabled-time Nivas"
        )
        # Stored is not yet judged: rules are matched after the store write. Only once their
        # batches are committed have the Nivas met the disabled rule.
        await eventually(
            lambda: group_caught_up(
                settings.kafka_broker_url, settings.detections_topic, group, partitions=PARTITIONS
            ),
            within=30,
            what="the disabled-time Nivas through every step",
        )
        # Enabled again before it is deleted: were the deletion lost, the rule would be back
        # in force after the restart, and seen there.
        enabled = await stack.client.patch(path, json={"enabled": True}, headers=stack.admin)
        assert enabled.status_code == 200
        await _rules_in_force(registries, 2)
        assert (await stack.client.delete(path, headers=stack.admin)).status_code == 204
        await _rules_in_force(registries, 1)

    async with _two_indexers(settings, group) as registries:
        await _rules_in_force(registries, 1)
        await _send_nivas(settings, marked="deleted")
        await send_values(settings.kafka_broker_url, settings.detections_topic, [_suv("last")])
        await eventually(lambda: _seed_alerted(settings, "last"), within=30, what="the last SUV")

    nivas = [a for a in await _alerts(settings) if a["make"] == "Lada"]
    # Alerts only while the rule was enabled: one per partition, each naming the rule.
    assert [a["category"] for a in nivas] == ["live"] * PARTITIONS
    assert all(a["rules"] == [{"id": rule_id, "name": "Nivas"}] for a in nivas)
    # And the history beside the detections holds exactly those.
    store = detection_store(store_url)
    await store.open()
    try:
        kept = await store.alerts(AlertFilter(rule=uuid.UUID(rule_id)), limit=100)
    finally:
        await store.close()
    assert sorted(str(a.detection.id) for a in kept) == sorted(a["id"] for a in nivas)


@asynccontextmanager
async def _two_indexers(settings: Settings, group: str) -> AsyncIterator[list[CollectorRegistry]]:
    registries = [CollectorRegistry(), CollectorRegistry()]
    async with (
        indexer_running(settings, group=group, registry=registries[0]),
        indexer_running(settings, group=group, registry=registries[1]),
    ):

        async def both_consuming() -> bool:
            # SUVs on every partition, until each indexer has read some: both hold partitions.
            await send_to_every_partition(
                settings.kafka_broker_url,
                settings.detections_topic,
                [_suv("warm-up")],
                partitions=PARTITIONS,
            )
            consumed = [
                r.get_sample_value("roadwatch_detections_consumed_total") for r in registries
            ]
            return all(count is not None and count > 0 for count in consumed)

        await eventually(both_consuming, within=60, what="both indexers consuming", every=1)
        yield registries


async def _rules_in_force(registries: list[CollectorRegistry], count: int) -> None:
    async def seen() -> bool:
        return all(r.get_sample_value("roadwatch_watchlist_rules") == count for r in registries)

    await eventually(seen, within=10, what=f"{count} rule(s) in force in each indexer", every=0.02)


async def _stored_marked(store_url: str, marked: str) -> bool:
    store = detection_store(store_url)
    await store.open()
    try:
        return await store.count(DetectionFilter(category=marked)) == PARTITIONS
    finally:
        await store.close()


async def _send_nivas(settings: Settings, *, marked: str) -> None:
    """A Niva on every partition, its category saying when it was sent."""
    value = orjson.dumps({**LADA, "Category": marked})
    await send_to_every_partition(
        settings.kafka_broker_url, settings.detections_topic, [value], partitions=PARTITIONS
    )


def _suv(model: str) -> bytes:
    return orjson.dumps({"Year": 2018, "Make": "Jeep", "Model": model, "Category": "SUV"})


async def _alerts(settings: Settings) -> list[dict[str, Any]]:
    records = await read_topic(
        settings.kafka_broker_url, settings.alerts_topic, expected=0, within=0, settle=1
    )
    return [orjson.loads(value_of(record)) for record in records]


async def _nivas_alerted(settings: Settings, count: int) -> bool:
    nivas = [a for a in await _alerts(settings) if a["make"] == "Lada"]
    return len(nivas) >= count


async def _seed_alerted(settings: Settings, model: str) -> bool:
    return any(a["model"] == model for a in await _alerts(settings))


async def test_a_client_following_one_rule_gets_only_its_alerts_and_resumes_with_them(
    stack: Stack,
) -> None:
    settings = stack.settings
    created = await stack.client.post(
        "/watchlists", json={"name": "Fiats", "make": "Fiat"}, headers=stack.admin
    )
    rule_id = created.json()["id"]
    fiat = {"Year": 2015, "Make": "Fiat", "Model": "Panda", "Category": "Hatchback"}
    try:
        registry = CollectorRegistry()
        async with indexer_running(settings, registry=registry):
            await _rules_in_force([registry], 2)  # the seed rule and this one
            async with stack.client.stream(
                "GET", "/alerts", params={"rule": rule_id}, headers=stack.operator
            ) as response:
                assert response.status_code == 200
                events = read_events(response)
                await send_values(
                    settings.kafka_broker_url,
                    settings.detections_topic,
                    [_suv("not followed"), orjson.dumps({**fiat, "Model": "first"})],
                    key=b"in order",
                )
                first = await _next(events)
            assert orjson.loads(first.data)["model"] == "first"

            # Missed while away: the SUV's alert is not this client's, the Fiat's is.
            await send_values(
                settings.kafka_broker_url,
                settings.detections_topic,
                [_suv("missed, not followed"), orjson.dumps({**fiat, "Model": "missed"})],
                key=b"in order",
            )
            await eventually(
                lambda: _seed_alerted(settings, "missed, not followed"), within=30, what="SUV"
            )
            headers = {**stack.operator, "Last-Event-ID": str(first.id)}
            async with stack.client.stream(
                "GET", "/alerts", params={"rule": rule_id}, headers=headers
            ) as response:
                resumed = await _next(read_events(response))
            assert orjson.loads(resumed.data)["model"] == "missed"
            assert orjson.loads(resumed.data)["rules"] == [{"id": rule_id, "name": "Fiats"}]

        history = await stack.client.get(
            "/alerts/history", params={"rule": rule_id, "limit": 1}, headers=stack.operator
        )
        assert history.status_code == 200, history.text
        [newest] = history.json()["items"]
        assert (newest["model"], newest["rules"]) == ("missed", [{"id": rule_id, "name": "Fiats"}])
        older = await stack.client.get(
            "/alerts/history",
            params={"rule": rule_id, "cursor": history.json()["next_cursor"]},
            headers=stack.operator,
        )
        assert [a["model"] for a in older.json()["items"]] == ["first"]
        assert older.json()["next_cursor"] is None
    finally:
        await stack.client.delete(f"/watchlists/{rule_id}", headers=stack.admin)


async def _next(events: AsyncIterator[Event]) -> Event:
    async with asyncio.timeout(30):
        return await anext(events)


async def test_records_that_hold_no_rule_are_skipped_and_the_rules_stay_in_force(
    servers: Servers, postgres_database: str
) -> None:
    settings = await stream_settings(servers, store_url=postgres_database)
    jeeps = Rule(id=uuid.uuid4(), name="jeeps", make="Jeep")
    producer = AIOKafkaProducer(bootstrap_servers=servers.kafka, acks="all")
    await producer.start()
    try:
        await RulePublisher(producer, topic=settings.watchlists_topic).put(jeeps)
        registry = CollectorRegistry()
        async with indexer_running(settings, registry=registry):
            # A compacted topic refuses a record without a key: the broker keeps those out.
            garbage: list[tuple[bytes, bytes | None]] = [
                (b"not a uuid", rule_to_json(jeeps)),
                (str(uuid.uuid4()).encode(), b"\xff\xfe not json"),
                (str(uuid.uuid4()).encode(), b"[1, 2]"),
                (str(uuid.uuid4()).encode(), rule_to_json(jeeps)),  # keyed as another rule
                (str(uuid.uuid4()).encode(), None),  # a tombstone of a rule never seen
            ]
            for key, value in garbage:
                await producer.send_and_wait(settings.watchlists_topic, value, key=key)

            async def all_skipped() -> bool:
                return registry.get_sample_value("roadwatch_watchlist_records_skipped") == 4

            await eventually(all_skipped, within=10, what="4 records skipped", every=0.05)
            await send_values(servers.kafka, settings.detections_topic, [_suv("after garbage")])
            await eventually(
                lambda: _seed_alerted(settings, "after garbage"), within=30, what="its alert"
            )
            assert registry.get_sample_value("roadwatch_watchlist_rules") == 1
        [alert] = await _alerts(settings)
        assert alert["rules"] == [{"id": str(jeeps.id), "name": "jeeps"}]
    finally:
        await producer.stop()


async def test_the_topic_is_brought_in_line_with_the_database(
    servers: Servers, postgres_database: str
) -> None:
    settings = await stream_settings(servers, store_url=postgres_database)
    store = PostgresWatchlistStore(postgres_database)
    await store.open()
    producer = AIOKafkaProducer(bootstrap_servers=servers.kafka, acks="all")
    await producer.start()
    publisher = RulePublisher(producer, topic=settings.watchlists_topic)

    async def published() -> dict[uuid.UUID, Rule]:
        return (await read_rules(rules_consumer(settings), settings.watchlists_topic)).rules

    watchlists = Watchlists(store, publisher, published=published)
    seed = seed_rule("SUV")
    try:
        # First start: the seed rule, in the database and on the topic.
        assert await watchlists.reconcile(seed) == 1
        assert await published() == {SEED_ID: (await store.get(SEED_ID))}
        assert await watchlists.reconcile(seed) == 0

        # A rule forged straight onto the topic is withdrawn; one the topic lost is put back.
        forged = Rule(id=uuid.uuid4(), name="forged", make="Anything")
        await publisher.put(forged)
        await publisher.remove(SEED_ID)
        assert await watchlists.reconcile(seed) == 2
        assert set(await published()) == {SEED_ID}

        # The seed rule deleted by an operator is not created again.
        assert await watchlists.delete(SEED_ID, by="admin")
        assert await watchlists.reconcile(seed) == 0
        assert await published() == {}
        assert await store.count() == 0
    finally:
        await producer.stop()
        await store.close()


async def test_a_change_that_waits_past_the_query_timeout_is_a_503_and_changes_nothing(
    stack: Stack,
) -> None:
    created = await stack.client.post(
        "/watchlists", json={"name": "Held", "make": "Trabant"}, headers=stack.admin
    )
    path = f"/watchlists/{created.json()['id']}"
    # Another change under way, for longer than a statement may wait (API_QUERY_TIMEOUT, 3 s).
    holder = await asyncpg.connect(stack.users_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", WATCHLIST_LOCK)
        refused = await stack.client.patch(path, json={"enabled": False}, headers=stack.admin)
        assert refused.status_code == 503, refused.text
        assert refused.headers["retry-after"] == "1"
    finally:
        await holder.close()
    assert (await stack.client.get(path, headers=stack.admin)).json()["enabled"] is True
    assert (await stack.client.delete(path, headers=stack.admin)).status_code == 204
