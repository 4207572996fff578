"""A lane for each enabled subscription, kept in line with the store's subscriptions."""

import asyncio
from collections.abc import Coroutine
from uuid import UUID

from roadwatch.runtime.retry import retry_until_done
from roadwatch.webhooks.lanes import Attempt, Lane
from roadwatch.webhooks.metrics import DeliveryMetrics
from roadwatch.webhooks.store import Subscriptions
from roadwatch.webhooks.subscriptions import Webhook


class LaneSet:
    def __init__(
        self,
        store: Subscriptions,
        attempt: Attempt,
        *,
        metrics: DeliveryMetrics,
        stop: asyncio.Event,
        concurrency: int,
        capacity: int,
        timeout: float,
    ) -> None:
        self._store = store
        self._attempt = attempt
        self._metrics = metrics
        self._stop = stop
        self._concurrency = concurrency
        self._capacity = capacity
        self._timeout = timeout
        self._lanes: dict[UUID, Lane] = {}
        self._version: tuple[int, int] | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def get(self, webhook_id: UUID) -> Lane | None:
        return self._lanes.get(webhook_id)

    def webhooks(self) -> list[Webhook]:
        return [lane.webhook for lane in self._lanes.values()]

    def rooms(self) -> dict[UUID, int]:
        """How many retries each lane has room for, of those with any."""
        return {id_: lane.room for id_, lane in self._lanes.items() if lane.room}

    async def follow(self) -> None:
        """Bring the lanes in line with the subscriptions, if any changed."""
        version = await retry_until_done(
            self._store.version, what="reading the webhook subscriptions", stop=self._stop
        )
        if version == self._version:
            return
        version, webhooks = await retry_until_done(
            self._store.subscriptions, what="reading the webhook subscriptions", stop=self._stop
        )
        wanted = {webhook.id: webhook for webhook in webhooks if webhook.enabled}
        for webhook_id in self._lanes.keys() - wanted.keys():
            lane = self._lanes.pop(webhook_id)
            # Disabled or removed: what waited in its queue is not sent.
            for delivery in lane.close():
                if delivery.settle is not None:
                    delivery.settle()
            self._background(lane.finished(within=self._timeout))
        for webhook_id, webhook in wanted.items():
            existing = self._lanes.get(webhook_id)
            if existing is not None:
                existing.webhook = webhook
                continue
            lane = Lane(
                webhook, self._attempt, concurrency=self._concurrency, capacity=self._capacity
            )
            lane.start()
            self._lanes[webhook_id] = lane
        self._metrics.subscriptions.set(len(self._lanes))
        self._version = version

    async def close(self) -> None:
        """Stop every lane, and give the attempts under way the timeout to finish."""
        lanes = list(self._lanes.values())
        for lane in lanes:
            lane.close()
        await asyncio.gather(*(lane.finished(within=self._timeout) for lane in lanes))

    def _background(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.create_task(work)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
