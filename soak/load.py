"""The soak's load: the project's own producer at a steady rate, with a share of records
that are no detection among them, and three webhook receivers: one steady, one that fails
a share of requests, one slow."""

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from tests.helpers.receivers import Behaviour, Receiver, always_ok, receiver_running

from roadwatch.catalog.producer import DetectionProducer, ProducerStats
from roadwatch.catalog.vehicles import load_catalog
from roadwatch.settings import Settings

FAILING_SHARE = 0.3
SLOW_SECONDS = 0.2
# Records that are no detection, each unlike any other: each must be dead-lettered once.
BAD_PREFIX = b"not a detection "
BAD_SHARE = 0.01


@dataclass
class Producing:
    producer: DetectionProducer
    stop: asyncio.Event
    task: "asyncio.Task[ProducerStats]"
    bad: "asyncio.Task[int]"

    @property
    def stats(self) -> ProducerStats:
        return self.producer.stats


@asynccontextmanager
async def producing(settings: Settings, *, rate: float, seed: int) -> AsyncIterator[Producing]:
    """Detections drawn from the catalog (22% of it is SUVs) at `rate` a second until
    `stop` is set; every one acknowledged by two brokers in sync."""
    client = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_broker_url,
        acks="all",
        enable_idempotence=True,
        linger_ms=10,
        request_timeout_ms=30_000,
    )
    await client.start()
    producer = DetectionProducer(
        client,
        topic=settings.detections_topic,
        vehicles=load_catalog(),
        rng=random.Random(seed),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(producer.run(rate=rate, count=None, stop=stop))
    bad = asyncio.create_task(_bad_records(client, settings, rate=rate * BAD_SHARE, stop=stop))
    try:
        yield Producing(producer, stop, task, bad)
    finally:
        stop.set()
        await asyncio.gather(task, bad, return_exceptions=True)
        await client.stop()


async def _bad_records(
    client: AIOKafkaProducer, settings: Settings, *, rate: float, stop: asyncio.Event
) -> int:
    """Records that are no detection, sent at `rate` until `stop`; how many were sent. The
    checks find them on the topic, so one whose fate a broker restart hid counts too."""
    sent, started = 0, time.monotonic()
    while not stop.is_set():
        with contextlib.suppress(KafkaError):
            await client.send(settings.detections_topic, BAD_PREFIX + str(sent).encode())
        sent += 1
        # On a schedule, so that a send held up by a broker away is made up for.
        await asyncio.sleep(max(0.0, started + sent / rate - time.monotonic()))
    return sent


def failing(rng: random.Random) -> Behaviour:
    async def answer(_number: int, _request: web.Request) -> int:
        return 500 if rng.random() < FAILING_SHARE else 200

    return answer


async def slow(_number: int, _request: web.Request) -> int:
    await asyncio.sleep(SLOW_SECONDS)
    return 200


class Tally:
    """The alerts a receiver acknowledged, counted as its requests come: reading them all
    again every time would cost the soak seconds of CPU at the end of a long run."""

    def __init__(self, receiver: Receiver) -> None:
        self._receiver = receiver
        self._read = 0
        self._acknowledged: set[str] = set()

    def acknowledged(self) -> int:
        requests = self._receiver.requests
        for request in requests[self._read :]:
            if 200 <= request.status < 300:
                self._acknowledged.add(orjson.loads(request.body)["data"]["id"])
        self._read = len(requests)
        return len(self._acknowledged)


@asynccontextmanager
async def receivers_running(seed: int) -> AsyncIterator[dict[str, Receiver]]:
    behaviours = {
        "steady": always_ok,
        f"failing {FAILING_SHARE:.0%}": failing(random.Random(seed)),
        f"slow ({SLOW_SECONDS} s)": slow,
    }
    async with AsyncExitStack() as stack:
        yield {
            name: await stack.enter_async_context(receiver_running(behaviour))
            for name, behaviour in behaviours.items()
        }
