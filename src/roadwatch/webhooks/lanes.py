"""A subscription's own queue and workers: a slow or dead receiver holds up only itself."""

import asyncio
from collections.abc import Awaitable, Callable

from roadwatch.runtime.gathering import all_ended
from roadwatch.runtime.lifecycle import cancelled
from roadwatch.webhooks.subscriptions import Delivery, Webhook

Attempt = Callable[[Webhook, Delivery], Awaitable[None]]


class Lane:
    def __init__(
        self, webhook: Webhook, attempt: Attempt, *, concurrency: int, capacity: int
    ) -> None:
        self.webhook = webhook
        self._attempt = attempt
        self._concurrency = concurrency
        self._capacity = capacity
        self._queue: asyncio.Queue[Delivery | None] = asyncio.Queue()
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._workers = [asyncio.create_task(self._work()) for _ in range(self._concurrency)]

    def offer(self, delivery: Delivery) -> bool:
        """Queue a new delivery; False when the queue is full, for the caller to hold it."""
        if self._queue.qsize() >= self._capacity:
            return False
        self._queue.put_nowait(delivery)
        return True

    def take_claimed(self, delivery: Delivery) -> None:
        """Queue a delivery claimed from the database; `room` said there is space."""
        self._queue.put_nowait(delivery)

    @property
    def room(self) -> int:
        """How many retries to claim for this lane now: enough to keep its workers busy."""
        return max(0, 2 * self._concurrency - self._queue.qsize())

    def close(self) -> list[Delivery]:
        """Give back what is queued, and let the workers end once their attempt is made."""
        left = []
        while not self._queue.empty():
            delivery = self._queue.get_nowait()
            if delivery is not None:
                left.append(delivery)
        for _ in self._workers:
            self._queue.put_nowait(None)
        return left

    async def finished(self, *, within: float) -> None:
        """Wait for the attempts under way after close(); cancel those still running after
        `within` s (they are made again after a restart)."""
        if not self._workers:
            return
        _done, running = await asyncio.wait(self._workers, timeout=within)
        await all_ended(*(cancelled(worker) for worker in running))

    async def _work(self) -> None:
        while True:
            delivery = await self._queue.get()
            if delivery is None:
                return
            await self._attempt(self.webhook, delivery)
