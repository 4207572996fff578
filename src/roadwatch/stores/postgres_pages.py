"""Pages of detections and of alerts from PostgreSQL, newest first, a few days' tables at a
time (postgres_windows), and the capped counts of a listing."""

from dataclasses import replace
from datetime import date, datetime
from typing import TypeVar

from roadwatch.domain import Alert, Detection
from roadwatch.stores import postgres_days
from roadwatch.stores.detection_store import (
    AlertFilter,
    DetectionFilter,
    Dimension,
    Position,
    kept_counts_for,
)
from roadwatch.stores.driver_pool import DriverPool
from roadwatch.stores.postgres_alert_history import alert_of, history_query
from roadwatch.stores.postgres_rows import detection_of
from roadwatch.stores.postgres_statements import SELECT_DETECTIONS, FilterQuery
from roadwatch.stores.postgres_time_counts import detections_between, per_bucket
from roadwatch.stores.postgres_windows import (
    KnownDays,
    Window,
    capped_total,
    newest_rows,
    until_of,
    windows,
)
from roadwatch.time_buckets import Bucket

Filter = TypeVar("Filter", DetectionFilter, AlertFilter)
# How many times more days each window holds than the one before. A page wants few rows,
# and most often finds them in the newest day. A count wants up to COUNT_CAP + 1, and for a
# rare filter counts every day: each statement more cost about a millisecond over a year of
# tables (a count of 4,164 rows took 12.7 ms as one statement, 19.8 ms in windows doubling,
# 15.3 ms growing eightfold), so a count asks the newest day, then every other day at once.
PAGE_GROWTH = 2
COUNT_GROWTH = 1_000_000
# A skip that ends this deep or deeper in a window has the window narrowed by the counts
# over time, a query each for its days, hours and minutes (about 1.2 ms in all), before
# rows are passed one by one (0.13 ms a thousand, at 1,000,000 detections over 30 days).
NARROW_PAST = 10_000
# All detections are summed from their counts by category: a few keys a bucket, where the
# makes are dozens.
ALL_BY = Dimension.CATEGORY


class Pages:
    """The reads of a listing, on asyncpg's pool."""

    def __init__(self, reads: DriverPool) -> None:
        self._reads = reads
        self._days = KnownDays(self._list_days)

    async def detections(
        self, where: DetectionFilter, *, skip: int, limit: int, after: Position | None
    ) -> list[Detection]:
        deadline = self._reads.deadline()

        async def fetch(window: Window, skip: int, limit: int) -> list[Detection]:
            query = FilterQuery()
            conditions = query.conditions(_in(where, window), after=after)
            sql = (
                f'{SELECT_DETECTIONS}{conditions} ORDER BY "timestamp" DESC, id DESC'
                f" OFFSET {query.arg(skip)} LIMIT {query.arg(limit)}"
            )
            rows = await self._reads.fetch(sql, *query.args, deadline=deadline)
            return [detection_of(row) for row in rows]

        async def count(window: Window, cap: int) -> int:
            # A skip passes whole windows: the counts over time say how many rows each holds
            # without reading them, when they can.
            held = None if after is not None else await self._counted(_in(where, window), deadline)
            if held is not None:
                return held
            return await self._count(_in(where, window), after=after, cap=cap, deadline=deadline)

        async def narrow(window: Window, skip: int) -> tuple[Window, int]:
            if after is not None or skip < NARROW_PAST:
                return window, skip
            return await self.narrowed(_in(where, window), skip, deadline)

        in_windows = await self._windows(where.since, where.until, after, deadline=deadline)
        return await newest_rows(
            in_windows, fetch, limit=limit, skip=skip, count=count, narrow=narrow
        )

    async def count(self, where: DetectionFilter, *, cap: int | None) -> int:
        """How many detections match, counted no further than `cap` + 1 if given."""
        deadline = self._reads.deadline()
        if cap is None:
            return await self._count(where, after=None, cap=None, deadline=deadline)

        async def count(window: Window, cap: int) -> int:
            return await self._count(_in(where, window), after=None, cap=cap, deadline=deadline)

        in_windows = await self._windows(
            where.since, where.until, None, deadline=deadline, growth=COUNT_GROWTH
        )
        return await capped_total(in_windows, count, cap=cap + 1)

    async def alerts(
        self, where: AlertFilter, *, limit: int, after: Position | None
    ) -> list[Alert]:
        deadline = self._reads.deadline()

        async def fetch(window: Window, _skip: int, limit: int) -> list[Alert]:
            sql, args = history_query(_in(where, window), limit=limit, after=after)
            return [alert_of(row) for row in await self._reads.fetch(sql, *args, deadline=deadline)]

        in_windows = await self._windows(where.since, where.until, after, deadline=deadline)
        return await newest_rows(in_windows, fetch, limit=limit)

    async def _windows(
        self,
        since: datetime | None,
        until: datetime | None,
        after: Position | None,
        *,
        deadline: float | None,
        growth: int = PAGE_GROWTH,
    ) -> list[Window]:
        bound = until_of(until, None if after is None else after.timestamp)
        days = await self._days(deadline)
        return windows(days, since=since, until=bound, growth=growth)

    async def _count(
        self,
        where: DetectionFilter,
        *,
        after: Position | None,
        cap: int | None,
        deadline: float | None,
    ) -> int:
        query = FilterQuery()
        conditions = query.conditions(where, after=after)
        limit = "" if cap is None else f" LIMIT {query.arg(cap)}"
        # Column names and placeholders only: the values travel as arguments.
        sql = f"SELECT count(*) FROM (SELECT 1 FROM detections{conditions}{limit}) AS m"  # noqa: S608
        return int(await self._reads.fetchval(sql, *query.args, deadline=deadline))

    async def _counted(self, where: DetectionFilter, deadline: float | None) -> int | None:
        """How many detections match, from the counts over time, which keep them by make
        and by category alone; None for any other filter, or times off the counts' edges."""
        if (counted_by := kept_counts_for(where, all_by=ALL_BY)) is None:
            return None
        dimension, key = counted_by
        return await detections_between(
            self._reads,
            dimension=dimension,
            key=key,
            since=where.since,
            until=where.until,
            deadline=deadline,
        )

    async def narrowed(
        self, where: DetectionFilter, skip: int, deadline: float | None
    ) -> tuple[Window, int]:
        """[where.since, where.until) with its top lowered past the days, then the hours,
        then the minutes that the counts over time say the skip passes whole; and what is
        left to skip. As it was, when the counts cannot say."""
        whole = Window(where.since, where.until)
        if (counted_by := kept_counts_for(where, all_by=ALL_BY)) is None:
            return whole, skip
        dimension, key = counted_by
        since, until, left = where.since, where.until, skip
        for bucket in (Bucket.DAY, Bucket.HOUR, Bucket.MINUTE):
            if not _tiles(bucket, since, until):
                continue
            counts = await per_bucket(
                self._reads,
                dimension=dimension,
                key=key,
                bucket=bucket,
                since=since,
                until=until,
                deadline=deadline,
            )
            for start, held in counts:
                if held > left:
                    since = start if since is None else max(since, start)
                    end = start + bucket.length
                    until = end if until is None else min(until, end)
                    break
                left -= held
            else:
                return whole, skip  # the counts hold fewer than the window's count said
        return Window(where.since, until), left

    async def _list_days(self, deadline: float | None) -> set[date]:
        rows = await self._reads.fetch(postgres_days.LIST_DAYS, deadline=deadline)
        return postgres_days.days_named(rows)


def _tiles(bucket: Bucket, since: datetime | None, until: datetime | None) -> bool:
    """Whether [since, until) is made of whole buckets, few enough to read their counts:
    any number of days, up to 1,500 hours or minutes."""
    if not all(edge is None or bucket.is_edge(edge) for edge in (since, until)):
        return False
    if bucket is Bucket.DAY:
        return True
    return since is not None and until is not None and until - since <= bucket.length * 1_500


def _in(where: Filter, window: Window) -> Filter:
    """The filter, narrowed to the window (which lies within its own times)."""
    return replace(where, since=window.since, until=window.until)
