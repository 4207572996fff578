"""The webhook deliverer's pure parts: offsets, retries, targets, signatures, matching."""

import asyncio
import functools
import ipaddress
import uuid
from datetime import UTC, datetime, timedelta
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook as Verifier

from roadwatch.rejections import RecordsRefused
from roadwatch.webhooks.offsets import OffsetTracker
from roadwatch.webhooks.recorder import Recorder
from roadwatch.webhooks.retries import Outcome, RetrySchedule, is_retried, retry_after_seconds
from roadwatch.webhooks.signing import new_secret, signed_headers
from roadwatch.webhooks.store import Attempt
from roadwatch.webhooks.subscriptions import Delivery, Webhook, delivery_id
from roadwatch.webhooks.targets import RefusedTarget, TargetPolicy, is_internal, parse_networks
from tests.helpers.factories import make_webhook

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)


def test_an_offset_is_committable_only_once_it_and_all_before_it_settled() -> None:
    tracker = OffsetTracker()
    tracker.taken(0, 10, 2)
    tracker.taken(0, 11, 1)
    tracker.taken(0, 12, 0)
    tracker.settled(0, 11)
    assert tracker.committable() == {}
    tracker.settled(0, 10)
    assert tracker.committable() == {}
    tracker.settled(0, 10)
    assert tracker.committable() == {0: 13}
    tracker.committed({0: 13})
    assert tracker.committable() == {}
    assert tracker.pending() == 0


def test_a_record_without_deliveries_at_the_front_is_committable_at_once() -> None:
    tracker = OffsetTracker()
    tracker.taken(2, 5, 0)
    assert tracker.committable() == {2: 6}


def test_pending_counts_unsettled_records_of_the_partitions_named() -> None:
    tracker = OffsetTracker()
    tracker.taken(0, 0, 1)
    tracker.taken(1, 0, 2)
    tracker.taken(1, 1, 0)
    assert (tracker.pending({0}), tracker.pending({1}), tracker.pending()) == (1, 2, 3)
    tracker.settled(1, 0)
    tracker.settled(1, 0)
    assert tracker.pending({1}) == 0
    assert tracker.partitions() == {0, 1}


def test_a_forgotten_partition_ignores_late_settlements() -> None:
    tracker = OffsetTracker()
    tracker.taken(1, 0, 1)
    tracker.forget({1})
    tracker.settled(1, 0)
    assert tracker.committable() == {}


@given(st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=40), st.randoms())
def test_whatever_the_order_of_settlements_the_commit_never_passes_an_unsettled_record(
    counts: list[int], random: Random
) -> None:
    tracker = OffsetTracker()
    settlements = []
    for offset, count in enumerate(counts):
        tracker.taken(0, offset, count)
        settlements += [offset] * count
    random.shuffle(settlements)
    remaining = dict(enumerate(counts))
    for offset in settlements:
        tracker.settled(0, offset)
        remaining[offset] -= 1
        committed = tracker.committable().get(0)
        if committed is not None:
            tracker.committed({0: committed})
            assert all(remaining[o] == 0 for o in range(committed))
    assert tracker.pending() == 0


@pytest.mark.parametrize(
    ("status", "retried"),
    [
        *[(None, True), (500, True), (503, True), (408, True), (409, True), (429, True)],
        *[(400, False), (401, False), (404, False), (410, False), (301, False)],
    ],
)
def test_which_failures_are_retried(status: int | None, retried: bool) -> None:
    assert is_retried(status) is retried


def test_backoff_doubles_with_jitter_up_to_the_longest_wait() -> None:
    schedule = RetrySchedule(first=5, longest=3600, give_up_after=86400)
    for attempts, backoff in [(1, 5), (2, 10), (3, 20), (12, 3600), (40, 3600)]:
        delays = {schedule.delay(attempts) for _ in range(50)}
        assert all(backoff / 2 <= d <= backoff for d in delays)
        assert len(delays) > 1


def test_retry_after_is_honoured_but_bounded() -> None:
    schedule = RetrySchedule(first=1, longest=60)
    assert schedule.delay(1, retry_after=30) >= 30
    assert schedule.delay(1, retry_after=10**9) <= 60


def test_the_default_schedule_retries_for_at_least_a_day() -> None:
    schedule = RetrySchedule()
    created = NOW
    assert not schedule.gives_up(created, created + timedelta(hours=23, minutes=59))
    assert schedule.gives_up(created, created + timedelta(hours=24))


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after_seconds("120") == 120
    assert retry_after_seconds("Sun, 29 Nov 2026 12:01:00 GMT", now=NOW) == 60
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


@given(st.text(max_size=40))
def test_retry_after_is_a_number_or_none_whatever_a_receiver_sends(header: str) -> None:
    seconds = retry_after_seconds(header, now=NOW)
    assert seconds is None or seconds >= 0


@pytest.mark.parametrize("header", ["²", "١٢", "9" * 5000, "Sun, 29 Nov 99999 12:01:00 GMT"])
def test_retry_after_with_digits_of_other_scripts_or_out_of_range_is_none_or_seconds(
    header: str,
) -> None:
    seconds = retry_after_seconds(header, now=NOW)
    assert seconds is None or seconds >= 0


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 - an address refused, not one bound
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "100.100.100.200",
        # IPv6 that carries an internal IPv4 address: IPv4-compatible, NAT64, 6to4.
        "::127.0.0.1",
        "64:ff9b::10.0.0.1",
        "2002:7f00:1::1",
        "2002:a00:1::1",
        # Local-use NAT64, site-local, documentation, SRv6.
        "64:ff9b:1::8.8.8.8",
        "fec0::1",
        "3fff::1",
        "5f00::1",
    ],
)
def test_internal_addresses_are_refused(address: str) -> None:
    assert is_internal(ipaddress.ip_address(address))
    with pytest.raises(RefusedTarget):
        TargetPolicy().check_address("host", ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    ["93.184.215.14", "8.8.8.8", "2606:4700::1111", "64:ff9b::8.8.8.8", "2002:808:808::1"],
)
def test_public_addresses_are_permitted(address: str) -> None:
    assert TargetPolicy().permits(ipaddress.ip_address(address))


def test_the_allow_list_permits_only_what_it_names() -> None:
    policy = TargetPolicy(parse_networks("127.0.0.1/32, 10.1.0.0/16"))
    assert policy.permits(ipaddress.ip_address("127.0.0.1"))
    assert policy.permits(ipaddress.ip_address("10.1.200.3"))
    assert not policy.permits(ipaddress.ip_address("127.0.0.2"))
    assert not policy.permits(ipaddress.ip_address("10.2.0.1"))


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "http://user:secret@example.com/",
        "http:///path",
        "http://example.com:70000/",
        "http://exa mple.com/",
        "http://example.com/\r\nX-Injected: 1",
        "http://127.0.0.1/",
        "http://[::1]/",
        "https://" + "a" * 3000 + ".com/",
        # Hosts that cannot be encoded for DNS.
        "http://" + "\u24d0" * 64 + ".com/",
        "http://a....../",
        "http://[::127.0.0.1]/",
    ],
)
def test_malformed_or_internal_urls_are_refused(url: str) -> None:
    with pytest.raises(RefusedTarget):
        TargetPolicy().check_url(url)


def test_a_signature_verifies_with_the_reference_verifier_under_every_secret_in_force() -> None:
    old, new = new_secret(), new_secret()
    body = b'{"type":"alert.created","data":{"id":"x"}}'
    now = datetime.now(UTC)
    headers = signed_headers("msg-1", body, secrets_in_force=[new, old], at=now)
    assert headers["webhook-id"] == "msg-1"
    for secret in (old, new):
        assert Verifier(secret).verify(body, headers) == {
            "type": "alert.created",
            "data": {"id": "x"},
        }
    with pytest.raises(Exception, match="signature"):
        Verifier(new_secret()).verify(body, headers)


def test_the_previous_secret_signs_only_until_its_time() -> None:
    webhook = _webhook(previous_secret="whsec_old", previous_secret_until=NOW + timedelta(hours=1))
    assert webhook.secrets_in_force(NOW) == [webhook.secret, "whsec_old"]
    assert webhook.secrets_in_force(NOW + timedelta(hours=2)) == [webhook.secret]


def test_a_subscription_wants_alerts_after_its_creation_of_its_rules() -> None:
    rule, other = uuid.uuid4(), uuid.uuid4()
    every = _webhook()
    filtered = _webhook(rule_ids=frozenset({rule}))
    later = NOW + timedelta(seconds=1)
    assert every.wants(frozenset({other}), later)
    assert not every.wants(frozenset({other}), NOW - timedelta(seconds=1))
    assert filtered.wants(frozenset({rule, other}), later)
    assert not filtered.wants(frozenset({other}), later)
    assert not _webhook(enabled=False).wants(frozenset({rule}), later)


def test_the_message_id_is_the_same_for_an_alert_and_subscription_and_differs_otherwise() -> None:
    hook, alert = uuid.uuid4(), uuid.uuid4()
    assert delivery_id(hook, alert) == delivery_id(hook, alert)
    assert delivery_id(hook, alert) != delivery_id(uuid.uuid4(), alert)
    assert delivery_id(hook, alert) != delivery_id(hook, uuid.uuid4())


def _webhook(**fields: object) -> Webhook:
    return make_webhook(**({"created_at": NOW} | fields))


class _FlakyStore:
    """Fails to write until told to work."""

    def __init__(self) -> None:
        self.works = False
        self.failed = asyncio.Event()
        self.recorded: list[object] = []

    async def enqueue(self, deliveries: object) -> None:
        if not self.works:
            self.failed.set()
            raise ConnectionError("the database is down")

    async def record(self, attempts: list[object]) -> None:
        self.recorded.extend(attempts)


class _FussyStore:
    """Refuses, for what it holds, any write that holds an attempt with an error."""

    def __init__(self) -> None:
        self.recorded: list[Attempt] = []

    async def enqueue(self, deliveries: object) -> None:
        return None

    async def record(self, attempts: list[Attempt]) -> None:
        if any(a.error == "refused" for a in attempts):
            raise RecordsRefused("invalid byte sequence for encoding UTF8: 0x00")
        self.recorded.extend(attempts)


async def test_an_attempt_the_store_refuses_holds_up_no_other_and_is_kept_without_its_words() -> (
    None
):
    store = _FussyStore()
    recorder = Recorder(store, stop=asyncio.Event(), interval=0)  # type: ignore[arg-type]
    settled: list[int] = []
    attempts = [
        Attempt(
            delivery=Delivery(
                uuid.uuid4(), uuid.uuid4(), b"{}", NOW, settle=functools.partial(settled.append, n)
            ),
            attempted_at=NOW,
            outcome=Outcome.RETRY,
            status=500,
            latency_ms=1.0,
            error="refused" if n == 1 else "HTTP 500",
            next_attempt_at=NOW,
        )
        for n in range(3)
    ]
    for attempt in attempts:
        recorder.add(attempt)
    recorder.close()
    async with asyncio.timeout(10):
        await recorder.run()
    assert sorted(settled) == [0, 1, 2]
    kept = [a.error for a in store.recorded]
    assert kept == ["HTTP 500", "an answer the store refused", "HTTP 500"]


async def test_the_recorder_says_how_long_writing_has_failed_and_settles_once_it_works() -> None:
    now = [100.0]
    store = _FlakyStore()
    stop = asyncio.Event()
    recorder = Recorder(store, stop=stop, interval=0, clock=lambda: now[0])  # type: ignore[arg-type]
    settled = asyncio.Event()
    delivery = Delivery(uuid.uuid4(), uuid.uuid4(), b"{}", NOW, settle=settled.set)
    running = asyncio.create_task(recorder.run())
    recorder.hold([delivery])
    async with asyncio.timeout(10):
        await store.failed.wait()
    now[0] = 160.0
    assert recorder.failing_for() == 60
    assert not settled.is_set()
    store.works = True
    async with asyncio.timeout(10):
        await settled.wait()
    assert recorder.failing_for() == 0
    recorder.close()
    await running


class _SilentStore:
    """Takes a write and never answers, as a database gone silent mid-request."""

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.answer = asyncio.Event()

    async def enqueue(self, deliveries: object) -> None:
        self.asked.set()
        await self.answer.wait()

    async def record(self, attempts: list[object]) -> None:
        return None


async def test_the_recorder_says_how_long_a_write_has_gone_unanswered() -> None:
    now = [100.0]
    store = _SilentStore()
    recorder = Recorder(store, stop=asyncio.Event(), interval=0, clock=lambda: now[0])  # type: ignore[arg-type]
    settled = asyncio.Event()
    running = asyncio.create_task(recorder.run())
    recorder.hold([Delivery(uuid.uuid4(), uuid.uuid4(), b"{}", NOW, settle=settled.set)])
    async with asyncio.timeout(10):
        await store.asked.wait()
    now[0] = 145.0
    assert recorder.unanswered_for() == 45
    assert recorder.failing_for() == 0  # nothing failed: only a silence to show
    store.answer.set()
    async with asyncio.timeout(10):
        await settled.wait()
    assert recorder.unanswered_for() == 0
    recorder.close()
    await running
