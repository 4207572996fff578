"""Webhooks end to end: subscriptions through the API, alerts from the real alerts topic,
POSTed by the deliverer to real local receivers that verify every signature."""

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from roadwatch.alerts import encode_alert
from roadwatch.domain import Alert, Detection, RuleRef, Source
from roadwatch.settings import Settings
from tests.helpers.api_stack import AdminStack, admin_stack
from tests.helpers.kafka import header, read_topic, send_values
from tests.helpers.ports import free_port
from tests.helpers.processes import (
    deliverer_running,
    start_deliverer_process,
)
from tests.helpers.receivers import Receiver, receiver_running
from tests.helpers.servers import Servers, create_topic, unique
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

RULE_A = RuleRef(uuid.uuid4(), "stolen")
RULE_B = RuleRef(uuid.uuid4(), "suv")


Stack = AdminStack


@pytest.fixture(scope="module")
async def stack(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with admin_stack(
        servers,
        log=tmp_path_factory.mktemp("api") / "api.log",
        webhooks_dead_letter_topic=await create_topic(servers.kafka, partitions=1),
        # The receivers here are on loopback; nothing else internal is allowed.
        webhook_allowed_networks="127.0.0.1/32",
        webhook_timeout=2.0,
        webhook_retry_first=0.2,
        webhook_retry_longest=1.0,
        webhook_retry_for=300.0,
    ) as stack:
        yield stack


@pytest.fixture
async def clean(stack: Stack) -> AsyncIterator[Stack]:
    """The stack, with no subscription left by another test."""
    yield stack
    listed = await stack.client.get("/webhooks", headers=stack.admin)
    for webhook in listed.json():
        await stack.client.delete(f"/webhooks/{webhook['id']}", headers=stack.admin)


async def subscribe(stack: Stack, receiver: Receiver, **fields: Any) -> dict[str, Any]:
    created = await stack.client.post(
        "/webhooks", json={"url": receiver.url, **fields}, headers=stack.admin
    )
    assert created.status_code == 201, created.text
    webhook: dict[str, Any] = created.json()
    receiver.secrets.append(webhook["secret"])
    return webhook


def alert(*rules: RuleRef) -> Alert:
    detection = Detection(
        id=uuid.uuid4(),
        timestamp=datetime.now(UTC),
        year=2018,
        make="Jeep",
        model="Wrangler",
        category="SUV",
        source=Source("intellisite.detections", 0, 0),
    )
    return Alert(detection, rules or (RULE_B,))


async def publish(settings: Settings, alerts: list[Alert]) -> set[str]:
    await send_values(settings.kafka_broker_url, settings.alerts_topic, map(encode_alert, alerts))
    return {str(a.detection.id) for a in alerts}


async def has_all(receiver: Receiver, ids: set[str], *, within: float, what: str) -> None:
    async def arrived() -> bool:
        return ids <= receiver.alert_ids()

    await eventually(arrived, within=within, what=what)


def assert_signed(receiver: Receiver) -> None:
    assert receiver.requests, "nothing arrived"
    unverified = [r for r in receiver.requests if not r.signed_with]
    assert not unverified, unverified[:3]


# The API.


async def test_only_administrators_manage_webhooks_and_the_secret_is_shown_once(
    clean: Stack,
) -> None:
    stack = clean
    async with receiver_running() as receiver:
        refused = await stack.client.post(
            "/webhooks", json={"url": receiver.url}, headers=stack.operator
        )
        assert refused.status_code == 403
        assert (await stack.client.get("/webhooks")).status_code == 401
        webhook = await subscribe(stack, receiver, description="dispatch")
        assert webhook["secret"].startswith("whsec_")
        assert webhook["health"]["status"] == "new"
        listed = (await stack.client.get("/webhooks", headers=stack.admin)).json()
        assert [w["id"] for w in listed] == [webhook["id"]]
        assert "secret" not in listed[0]
        one = (await stack.client.get(f"/webhooks/{webhook['id']}", headers=stack.admin)).json()
        assert "secret" not in one
        assert one["description"] == "dispatch"
        changed = await stack.client.patch(
            f"/webhooks/{webhook['id']}", json={"enabled": False}, headers=stack.admin
        )
        assert changed.status_code == 200
        assert changed.json()["enabled"] is False
        gone = await stack.client.delete(f"/webhooks/{webhook['id']}", headers=stack.admin)
        assert gone.status_code == 204
        again = await stack.client.get(f"/webhooks/{webhook['id']}", headers=stack.admin)
        assert again.status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.2:9/hook",  # loopback, outside the allow-list
        "http://[::1]:9/hook",
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
        "http://10.1.2.3/hook",
        "http://192.168.0.1/hook",
        "http://[::ffff:127.0.0.2]/hook",
        "http://0.0.0.0/hook",
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
        "http:///no-host",
        "http://example.com:99999/hook",
        "http://[::127.0.0.2]/hook",
        "http://[64:ff9b::7f00:2]/hook",
        "http://[fec0::1]/hook",
        "http://" + "\u24d0" * 64 + ".com/",
        "http://a....../",
    ],
)
async def test_urls_that_reach_inside_or_are_malformed_are_refused(clean: Stack, url: str) -> None:
    response = await clean.client.post("/webhooks", json={"url": url}, headers=clean.admin)
    assert response.status_code == 422, response.text
    assert (await clean.client.get("/webhooks", headers=clean.admin)).json() == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"url": "https://example.com/\\ud800"}',
        b'{"url": "https://example.com/", "description": "\\udfff"}',
        b'{"url": "https://example.com/"',
        b"\xff",
    ],
    ids=["lone-surrogate-in-url", "lone-surrogate-in-description", "truncated", "not-utf8"],
)
async def test_a_body_that_is_not_json_text_is_a_422(clean: Stack, body: bytes) -> None:
    response = await clean.client.post(
        "/webhooks",
        content=body,
        headers={**clean.admin, "Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert (await clean.client.get("/webhooks", headers=clean.admin)).json() == []


@pytest.mark.parametrize("description", ["\x00", "bell \x07", "\x1b[31mred", "x" * 1001])
async def test_a_description_with_control_characters_or_too_long_is_refused(
    clean: Stack, description: str
) -> None:
    async with receiver_running() as receiver:
        response = await clean.client.post(
            "/webhooks", json={"url": receiver.url, "description": description}, headers=clean.admin
        )
    assert response.status_code == 422, response.text
    assert description not in response.text
    assert (await clean.client.get("/webhooks", headers=clean.admin)).json() == []


async def test_an_unknown_rule_is_refused(clean: Stack) -> None:
    async with receiver_running() as receiver:
        response = await clean.client.post(
            "/webhooks",
            json={"url": receiver.url, "rules": [str(uuid.uuid4())]},
            headers=clean.admin,
        )
    assert response.status_code == 422
    assert "no watchlist rule" in response.json()["detail"]


# Delivery.


async def test_a_receiver_that_fails_three_times_gets_the_alert_with_one_message_id(
    clean: Stack,
) -> None:
    async def fails_thrice(number: int, _request: web.Request) -> int:
        return 500 if number <= 3 else 200

    registry = CollectorRegistry()
    async with (
        receiver_running(fails_thrice) as receiver,
        deliverer_running(clean.settings, registry=registry),
    ):
        webhook = await subscribe(clean, receiver)
        ids = await publish(clean.settings, [alert()])
        await has_all(receiver, ids, within=60, what="the alert after three failures")
        assert_signed(receiver)
        assert [r.status for r in receiver.requests] == [500, 500, 500, 200]
        assert len({r.message_id for r in receiver.requests}) == 1
        assert receiver.requests[0].event["data"]["rules"][0]["id"] == str(RULE_B.id)

        async def recorded() -> bool:
            page = await clean.client.get(
                f"/webhooks/{webhook['id']}/deliveries", headers=clean.admin
            )
            return len(page.json()["items"]) == 4

        await eventually(recorded, within=10, what="four attempts recorded")
        page = await clean.client.get(
            f"/webhooks/{webhook['id']}/deliveries?limit=3", headers=clean.admin
        )
        first = page.json()
        assert [i["outcome"] for i in first["items"]] == ["delivered", "retry", "retry"]
        assert first["items"][0]["status"] == 200
        older = await clean.client.get(
            f"/webhooks/{webhook['id']}/deliveries",
            params={"limit": 3, "cursor": first["next"]},
            headers=clean.admin,
        )
        assert [i["outcome"] for i in older.json()["items"]] == ["retry"]
        assert {i["delivery_id"] for i in first["items"] + older.json()["items"]} == {
            receiver.requests[0].message_id
        }
        health = (await clean.client.get(f"/webhooks/{webhook['id']}", headers=clean.admin)).json()
        assert health["health"]["status"] == "healthy"

        def attempts(result: str) -> float | None:
            return registry.get_sample_value(
                "roadwatch_webhook_deliveries_total", {"result": result}
            )

        assert (attempts("retry"), attempts("delivered")) == (3, 1)
        assert registry.get_sample_value("roadwatch_webhook_first_attempt_delay_seconds_count") == 1


@pytest.mark.slow
async def test_a_receiver_down_for_30_s_gets_everything_once_it_is_back(clean: Stack) -> None:
    down = Receiver(free_port())
    webhook = await subscribe(clean, down)
    registry = CollectorRegistry()
    async with deliverer_running(clean.settings, registry=registry):
        ids = await publish(clean.settings, [alert() for _ in range(20)])

        async def waiting() -> bool:
            found = await clean.client.get(f"/webhooks/{webhook['id']}", headers=clean.admin)
            return bool(found.json()["health"]["pending"] == 20)

        await eventually(waiting, within=20, what="20 deliveries held for a retry")

        async def gauged() -> bool:
            depth = registry.get_sample_value("roadwatch_webhook_retry_queue_depth")
            oldest = registry.get_sample_value("roadwatch_webhook_oldest_pending_seconds")
            return depth == 20 and oldest is not None and oldest > 0

        await eventually(gauged, within=15, what="the retry queue's depth and age in /metrics")
        await asyncio.sleep(30)  # the outage itself, not a wait for a condition
        async with receiver_running(receiver=down) as back:
            await has_all(back, ids, within=30, what="all 20 alerts after the outage")
    assert_signed(down)
    assert len({r.message_id for r in down.acknowledged()}) == 20


async def test_a_rule_filter_sends_only_that_rules_alerts(clean: Stack) -> None:
    # The rules must exist to be named: make two through the API.
    rule_ids = []
    for name in ("filter-a", "filter-b"):
        made = await clean.client.post(
            "/watchlists", json={"name": name, "make": name}, headers=clean.admin
        )
        assert made.status_code == 201, made.text
        rule_ids.append(made.json()["id"])
    rule_a, rule_b = (RuleRef(uuid.UUID(i), n) for i, n in zip(rule_ids, ("a", "b"), strict=True))
    async with (
        receiver_running() as only_a,
        receiver_running() as everything,
        deliverer_running(clean.settings),
    ):
        await subscribe(clean, only_a, rules=[rule_ids[0]])
        await subscribe(clean, everything)
        a_ids = await publish(clean.settings, [alert(rule_a) for _ in range(5)])
        b_ids = await publish(clean.settings, [alert(rule_b) for _ in range(5)])
        both = await publish(clean.settings, [alert(rule_a, rule_b)])
        await has_all(everything, a_ids | b_ids | both, within=30, what="every alert")
        await has_all(only_a, a_ids | both, within=30, what="rule A's alerts")
    assert only_a.alert_ids() == a_ids | both
    assert_signed(only_a)


async def test_a_slow_receiver_delays_no_other(clean: Stack) -> None:
    release = asyncio.Event()

    async def stuck(_number: int, _request: web.Request) -> int:
        await release.wait()
        return 200

    async with (
        receiver_running(stuck) as slow,
        receiver_running() as fast,
        deliverer_running(clean.settings.model_copy(update={"webhook_timeout": 30.0})),
    ):
        await subscribe(clean, slow)
        await subscribe(clean, fast)
        ids = await publish(clean.settings, [alert() for _ in range(200)])
        # Every alert reaches the fast receiver while the slow one has answered nothing.
        await has_all(fast, ids, within=30, what="every alert at the fast receiver")
        assert slow.requests == []
        release.set()
        await has_all(slow, ids, within=60, what="every alert at the slow one, once it answers")


async def test_a_refusal_is_final_dead_lettered_and_marks_the_subscription_failing(
    clean: Stack,
) -> None:
    async def gone(_number: int, _request: web.Request) -> int:
        return 410

    async with receiver_running(gone) as receiver, deliverer_running(clean.settings):
        webhook = await subscribe(clean, receiver)
        ids = await publish(clean.settings, [alert()])
        dead = await read_topic(
            clean.settings.kafka_broker_url, clean.settings.webhooks_dead_letter_topic, expected=1
        )
    assert len(receiver.requests) == 1
    letter = orjson.loads(dead[-1].value or b"")
    assert letter["webhook_id"] == webhook["id"]
    assert letter["reason"].startswith("HTTP 410")
    assert letter["body"]["data"]["id"] in ids
    found = (await clean.client.get(f"/webhooks/{webhook['id']}", headers=clean.admin)).json()
    assert found["health"]["status"] == "failing"
    assert found["health"]["last_error"].startswith("HTTP 410")


async def test_a_rotated_secret_signs_beside_the_old_one_and_a_test_event_arrives(
    clean: Stack,
) -> None:
    async with receiver_running() as receiver, deliverer_running(clean.settings):
        webhook = await subscribe(clean, receiver)
        old = receiver.secrets[0]
        rotated = await clean.client.post(f"/webhooks/{webhook['id']}/secret", headers=clean.admin)
        assert rotated.status_code == 200
        new = rotated.json()["secret"]
        receiver.secrets.append(new)
        queued = await clean.client.post(f"/webhooks/{webhook['id']}/test", headers=clean.admin)
        assert queued.status_code == 202

        async def tested() -> bool:
            return any(r.event.get("type") == "webhook.test" for r in receiver.requests)

        await eventually(tested, within=20, what="the test event")
    test_event = next(r for r in receiver.requests if r.event["type"] == "webhook.test")
    assert test_event.message_id == queued.json()["delivery_id"]
    assert set(test_event.signed_with) == {old, new}


POISON = [
    b"not json",
    b"",
    b"[1, 2, 3]",
    b'"a string"',
    b'{"no": "id"}',
    b'{"id": "not-a-uuid"}',
    b'{"id": "' + str(uuid.uuid4()).encode() + b'", "rules": 7}',
    b'{"id": "' + str(uuid.uuid4()).encode() + b'", "rules": [{"id": null}]}',
    b'{"id": "' + str(uuid.uuid4()).encode() + b'", "rules": ["x"]}',
    b'{"id": 1e999}',
    b'{"id": 123456789012345678901234567890}',
    b"\xff\xfe\x00",
    # A valid alert in form, but 200 KB of it.
    b'{"id": "' + str(uuid.uuid4()).encode() + b'", "pad": "' + b"x" * 200_000 + b'"}',
]


async def test_records_that_are_not_alerts_are_dead_lettered_and_stop_nothing(
    clean: Stack,
) -> None:
    async with receiver_running() as receiver, deliverer_running(clean.settings) as deliverer:
        await subscribe(clean, receiver)
        before = await publish(clean.settings, [alert()])
        await send_values(clean.settings.kafka_broker_url, clean.settings.alerts_topic, POISON)
        after = await publish(clean.settings, [alert()])
        await has_all(receiver, before | after, within=30, what="the alerts around the poison")
        dead = await read_topic(
            clean.settings.kafka_broker_url,
            clean.settings.webhooks_dead_letter_topic,
            expected=len(POISON),
        )
        await deliverer.ping_store()
    assert_signed(receiver)
    assert receiver.alert_ids() == before | after
    reasons = [header(r, "roadwatch.reason").decode() for r in dead]
    letters = [r for r in dead if r.value in POISON or (r.value is None and b"" in POISON)]
    assert len(letters) >= len(POISON)
    assert all(reason.startswith("not an alert") for reason in reasons[-len(POISON) :])


@pytest.mark.slow
async def test_a_kill_9_of_deliver_loses_no_delivery(clean: Stack, tmp_path: Path) -> None:
    async def unhurried(_number: int, _request: web.Request) -> int:
        await asyncio.sleep(0.01)  # so that deliveries are under way when the kill comes
        return 200

    group = unique("deliver")
    ids: set[str] = set()
    enough = asyncio.Event()

    async def stream() -> None:
        # A steady stream, about 100 alerts/s (well within what the receivers take), until
        # told to end: before, across and after the kill.
        while not enough.is_set():
            ids.update(await publish(clean.settings, [alert() for _ in range(10)]))
            await asyncio.sleep(0.1)

    async with receiver_running(unhurried) as one, receiver_running(unhurried) as two:
        await subscribe(clean, one)
        await subscribe(clean, two)
        log = tmp_path / "deliver.log"
        process = start_deliverer_process(clean.settings, group=group, log=log)
        streaming = asyncio.create_task(stream())
        try:

            async def midway() -> bool:
                return len(one.alert_ids()) >= 100

            await eventually(midway, within=60, what="deliveries under way", every=0.05)
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            assert not streaming.done(), "the stream ended before the kill: not mid-stream"
            process = start_deliverer_process(clean.settings, group=group, log=log)
            at_restart = len(ids)
            before_restart = set(ids)

            # An alert published since the restart, delivered by the new deliverer: the
            # receiver may have had every earlier one at the kill already.
            async def resumed() -> bool:
                return bool(one.alert_ids() - before_restart)

            await eventually(resumed, within=60, what="deliveries after the restart")
            enough.set()
            await streaming
            try:
                await has_all(one, ids, within=90, what="every alert at the first receiver")
                await has_all(two, ids, within=90, what="every alert at the second receiver")
            except AssertionError:
                missing = ids - one.alert_ids()
                raise AssertionError(
                    f"{len(missing)} of {len(ids)} missing; {log.read_text()[-4000:]}"
                ) from None
        finally:
            streaming.cancel()
            process.terminate()
            process.wait(timeout=30)
    assert len(ids) > at_restart
    for receiver in (one, two):
        assert_signed(receiver)
        by_alert: dict[str, set[str]] = {}
        for request in receiver.acknowledged():
            by_alert.setdefault(request.event["data"]["id"], set()).add(request.message_id)
        assert set(by_alert) == ids
        # A duplicate is allowed only under the same message id.
        assert all(len(message_ids) == 1 for message_ids in by_alert.values())
