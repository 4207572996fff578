"""The deliverer's loops beside its reading: claiming retries as lanes have room, and
keeping the backlog's gauges and the history's size."""

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from uuid import UUID

from roadwatch.runtime.retry import every
from roadwatch.webhooks.lane_set import LaneSet
from roadwatch.webhooks.metrics import DeliveryMetrics
from roadwatch.webhooks.store import DeliveryQueue

log = logging.getLogger(__name__)

PRUNE_EVERY = timedelta(minutes=10)
GAUGES_EVERY = 5.0


async def claim_retries(
    queue: DeliveryQueue, lanes: LaneSet, *, lease: float, poll_interval: float
) -> None:
    """Claim the deliveries due for a retry, as many as each lane has room for; at once
    again while some lane's claim came back full (a backlog draining)."""
    while True:
        rooms = lanes.rooms()
        try:
            claimed = await queue.claim_due(rooms, lease=lease)
        except Exception as error:
            log.warning("claiming webhook retries failed (%s); trying again", error)
            claimed = []
        per_lane: dict[UUID, int] = {}
        for delivery in claimed:
            lane = lanes.get(delivery.webhook_id)
            if lane is not None:
                lane.take_claimed(delivery)
            per_lane[delivery.webhook_id] = per_lane.get(delivery.webhook_id, 0) + 1
        draining = any(per_lane.get(id_) == room for id_, room in rooms.items())
        await asyncio.sleep(0.01 if draining else poll_interval)


async def keep_house(queue: DeliveryQueue, metrics: DeliveryMetrics, *, history: timedelta) -> None:
    """Gauge the backlog; remove what is older than the history kept."""
    pruned_at = datetime.min.replace(tzinfo=UTC)

    async def once() -> None:
        nonlocal pruned_at
        count, oldest = await queue.backlog()
        metrics.pending.set(count)
        now = datetime.now(UTC)
        metrics.oldest_pending.set(0 if oldest is None else (now - oldest).total_seconds())
        if now - pruned_at > PRUNE_EVERY:
            removed = await queue.prune(now - history)
            if removed:
                log.info("removed %d webhook records older than the history kept", removed)
            pruned_at = now

    await every(GAUGES_EVERY, once, what="webhook upkeep")
