"""The soak's load: the project's own producer at a steady rate, and three webhook
receivers: one steady, one that fails a share of requests, one slow."""

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

import orjson
from aiohttp import web
from aiokafka import AIOKafkaProducer
from tests.helpers.receivers import Behaviour, Receiver, always_ok, receiver_running

from roadwatch.catalog.producer import DetectionProducer, ProducerStats
from roadwatch.catalog.vehicles import load_catalog
from roadwatch.settings import Settings

FAILING_SHARE = 0.3
SLOW_SECONDS = 0.2


@dataclass
class Producing:
    producer: DetectionProducer
    stop: asyncio.Event
    task: "asyncio.Task[ProducerStats]"

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
    try:
        yield Producing(producer, stop, task)
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        await client.stop()


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
