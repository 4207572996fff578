"""The store's days, kept by the indexer: the next days made ready before their detections
arrive, and with a retention window, the days past it removed whole."""

import asyncio
import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta

from prometheus_client import CollectorRegistry, Counter

from roadwatch.runtime.retry import every
from roadwatch.stores.detection_store import DetectionStore
from roadwatch.time_buckets import Bucket

log = logging.getLogger(__name__)

UPKEEP_EVERY = 60.0
DAYS_AHEAD = 2


class DayKeeper:
    def __init__(
        self,
        store: DetectionStore,
        *,
        keep_for: timedelta | None,
        clock: Callable[[], datetime],
        registry: CollectorRegistry,
    ) -> None:
        self._store = store
        self._keep_for = keep_for
        self._clock = clock
        self._removed = Counter(
            "roadwatch_retention_days_removed",
            "Days of detections removed for being past the retention window",
            registry=registry,
        )

    def first_kept_day(self) -> date | None:
        """The first day that retention keeps: the day of its window's start. Every day
        before it lies wholly outside the window."""
        if self._keep_for is None:
            return None
        return Bucket.DAY.floor(self._clock() - self._keep_for).date()

    async def upkeep(self) -> list[date]:
        """Ready today and the days ahead; remove the days past the window. Return those."""
        today = Bucket.DAY.floor(self._clock()).date()
        await self._store.prepare_days(today + timedelta(days=n) for n in range(DAYS_AHEAD + 1))
        first_kept = self.first_kept_day()
        if first_kept is None:
            return []
        removed = await self._store.drop_days_before(first_kept)
        if removed:
            self._removed.inc(len(removed))
            log.info(
                "removed %d day(s) past the retention window: %s to %s",
                len(removed),
                removed[0],
                removed[-1],
            )
        return removed

    async def run(self, stop: asyncio.Event, *, period: float = UPKEEP_EVERY) -> None:
        """Upkeep now and every `period` seconds until stopped; a failure waits for the next."""
        await every(period, self.upkeep, what="keeping the store's days", stop=stop)
