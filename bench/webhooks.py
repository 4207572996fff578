"""Alerts fanned out to webhook receivers by `roadwatch deliver`: from an alert's publication
to its POST's arrival, with every receiver well, and with one slow and one failing."""

import asyncio
import contextlib
import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from tests.helpers.ports import free_port
from tests.helpers.servers import unique
from tests.helpers.waiting import eventually

from bench.stack import Bench, peak_rss_mb, start, stop
from roadwatch.alerts import encode_alert
from roadwatch.domain import Alert, Detection, RuleRef, Source
from roadwatch.stores.webhooks_postgres import PostgresWebhookStore
from roadwatch.webhooks.signing import new_secret
from roadwatch.webhooks.subscriptions import Webhook

RESPONSE = b"HTTP/1.1 %d X\r\nContent-Length: 0\r\n\r\n"
MARK = b'"model":"bench-'
RULE = RuleRef(uuid.uuid4(), "bench")


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server (keep-alive, Content-Length bodies), so that receiving
    costs little of the machine the deliverer runs on."""

    status: int = 200
    delay: float = 0.0
    port: int = field(default_factory=free_port)
    latencies_ms: list[float] = field(default_factory=list)
    # Each alert's send time, which names it: a second POST of one alert is a duplicate.
    alerts: set[int] = field(default_factory=set)
    duplicates: int = 0
    requests: int = 0

    def protocol(self) -> asyncio.Protocol:
        return _Connection(self)


class _Connection(asyncio.Protocol):
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[: end + 2].lower()
            start = head.find(b"content-length:")
            length = int(head[start + 15 : head.find(b"\r\n", start)]) if start >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self._answer(body)

    def _answer(self, body: bytes) -> None:
        receiver = self.receiver
        receiver.requests += 1
        if receiver.status == 200 and receiver.delay == 0:
            at = body.find(MARK) + len(MARK)
            sent = int(body[at : body.find(b'"', at)])
            if sent in receiver.alerts:
                receiver.duplicates += 1
            else:
                receiver.alerts.add(sent)
                receiver.latencies_ms.append((time.time_ns() - sent) / 1e6)
        reply = RESPONSE % receiver.status
        assert self.transport is not None
        if receiver.delay:
            asyncio.get_running_loop().call_later(receiver.delay, self._write, reply)
        else:
            self.transport.write(reply)

    def _write(self, reply: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(reply)


# (scenario, alerts per second, deliverer processes)
RUNS = [
    ("all well", 100, 1),
    ("all well", 200, 1),
    ("all well", 200, 2),
    ("all well", 1000, 1),
    ("one slow, one failing", 100, 1),
]


async def measure(bench: Bench, *, seconds: int, subscriptions: int = 10) -> list[dict[str, Any]]:
    results = []
    for scenario, rate, processes in RUNS:
        receivers = [Receiver() for _ in range(subscriptions)]
        if scenario != "all well":
            # One answers only after 10 s (the deliverer's timeout), one always with 500.
            receivers[-2:] = [Receiver(delay=10.0), Receiver(status=500)]
        run = await _run(bench, rate, seconds, receivers, processes=processes)
        results.append({"scenario": scenario, "rate": rate, **run})
    return results


async def _run(
    bench: Bench, rate: int, seconds: int, receivers: list[Receiver], *, processes: int = 1
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    servers = [
        await loop.create_server(r.protocol, "127.0.0.1", r.port, reuse_address=True)
        for r in receivers
    ]
    async with bench.postgres_database() as users_url:
        settings = (await bench.settings_for(store_url=users_url, users_url=users_url)).model_copy(
            update={
                "webhooks_dead_letter_topic": await bench.topic(1),
                "webhook_allowed_networks": "127.0.0.1/32",
            }
        )
        store = PostgresWebhookStore(users_url)
        await store.open()
        for receiver in receivers:
            webhook = Webhook(
                id=uuid.uuid4(),
                url=f"http://127.0.0.1:{receiver.port}/hook",
                rule_ids=None,
                description="bench",
                enabled=True,
                secret=new_secret(),
                created_at=datetime.now(UTC),
            )
            await store.create(webhook, created_by="bench")
        await store.close()
        group = unique("bench")
        delivers = [
            start("deliver", ["deliver", "--group", group], settings) for _ in range(processes)
        ]
        try:
            await asyncio.sleep(3)  # its start: the group joined before the first alert
            sent = await _publish(settings.kafka_broker_url, settings.alerts_topic, rate, seconds)
            well = [r for r in receivers if r.status == 200 and r.delay == 0]

            async def all_arrived() -> bool:
                return all(len(r.alerts) >= sent for r in well)

            # What has not arrived a minute after the last alert is reported as missing.
            with contextlib.suppress(AssertionError):
                await eventually(all_arrived, within=60, what="every delivery", every=0.5)
            rss = max(peak_rss_mb(deliver) for deliver in delivers)
        finally:
            for deliver in delivers:
                stop(deliver)
            for server in servers:
                server.close()
    latencies = sorted(ms for r in well for ms in r.latencies_ms)
    return {
        "alerts": sent,
        "subscriptions": len(receivers),
        "deliveries_expected_to_well_receivers": sent * len(well),
        "deliveries_made_to_well_receivers": len(latencies),
        "duplicates": sum(r.duplicates for r in well),
        "p50_ms": round(statistics.median(latencies), 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 1),
        "max_ms": round(latencies[-1], 1),
        "deliver_processes": processes,
        "deliver_peak_rss_mb": round(rss, 1),
    }


async def _publish(bootstrap: str, topic: str, rate: int, seconds: int) -> int:
    """`rate` alerts a second for `seconds`, in ticks of 10 ms; each names its send time."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=2)
    await producer.start()
    per_tick = rate // 100
    sent = 0
    began = time.monotonic()
    try:
        for tick in range(seconds * 100):
            pending = [
                await producer.send(topic, encode_alert(_alert()), partition=i % 3)
                for i in range(per_tick)
            ]
            sent += len(pending)
            await asyncio.gather(*pending)
            await asyncio.sleep(max(0.0, began + (tick + 1) / 100 - time.monotonic()))
    finally:
        await producer.stop()
    return sent


def _alert() -> Alert:
    detection = Detection(
        id=uuid.uuid4(),
        timestamp=datetime.now(UTC),
        year=2020,
        make="Jeep",
        model=f"bench-{time.time_ns()}",
        category="SUV",
        source=Source("bench", 0, 0),
    )
    return Alert(detection, (RULE,))
