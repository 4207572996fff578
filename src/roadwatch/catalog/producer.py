import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from roadwatch.catalog.vehicles import Vehicle
from roadwatch.kafka.types import AIOKafkaProducer
from roadwatch.shutdown import sleep_until_stopped


@dataclass
class ProducerStats:
    sent: int = 0
    acknowledged: int = 0
    failed: int = 0
    errors: list[BaseException] = field(default_factory=list)


class DetectionProducer:
    """Publishes detections drawn at random from the catalog, at a steady rate.

    The schedule is absolute (the n-th detection is due at n / rate seconds), so short
    stalls are caught up and the long-run rate holds whatever the batching.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        *,
        topic: str,
        vehicles: Sequence[Vehicle],
        rng: random.Random,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._messages = [vehicle.as_message() for vehicle in vehicles]
        self._rng = rng
        self.stats = ProducerStats()

    async def run(
        self,
        *,
        rate: float,
        count: int | None,
        stop: asyncio.Event,
        on_progress: Callable[[ProducerStats], None] = lambda _stats: None,
    ) -> ProducerStats:
        loop = asyncio.get_running_loop()
        started = loop.time()
        while (count is None or self.stats.sent < count) and not stop.is_set():
            due = int((loop.time() - started) * rate) + 1
            if count is not None:
                due = min(due, count)
            while self.stats.sent < due:
                future = await self._producer.send(self._topic, self._rng.choice(self._messages))
                future.add_done_callback(self._settled)
                self.stats.sent += 1
            on_progress(self.stats)
            if count is not None and self.stats.sent >= count:
                break
            next_due = started + self.stats.sent / rate
            delay = next_due - loop.time()
            if delay > 0:
                await sleep_until_stopped(stop, delay)
        await self._producer.flush()
        on_progress(self.stats)
        return self.stats

    def _settled(self, future: asyncio.Future[object]) -> None:
        if future.cancelled():
            self.stats.failed += 1
        elif (error := future.exception()) is not None:
            self.stats.failed += 1
            if len(self.stats.errors) < 10:
                self.stats.errors.append(error)
        else:
            self.stats.acknowledged += 1
