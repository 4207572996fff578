"""Reads of the newest rows first, asked of a few days' tables at a time.

Each UTC day is a table of its own (postgres_days), and a store kept without retention gains
one a day. A read that names no time, as the first page of /detections does, was planned and
started over every day's table: with 200 detections a day, a page took 1.0 ms over 30 days'
tables, 21 ms over a year's and 65 ms over two years', 0.1 ms of it reading rows. A read is
now asked of the newest day first, then of the two days before, then four, and so on, each
window's bounds on time in its statement so that the planner opens only its tables, until
the read has its rows. The last window reaches as far back as the read does: a read that
finds few rows asks about as many tables as before, in log2(days) statements.

The windows are cut at the days known to hold tables. A day made since they were listed
lies in the first window, which is open above, or in the last, open below: a read never
misses a row, only cuts less well until the days are listed again.
"""

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar

from roadwatch.time_buckets import day_start

Row = TypeVar("Row")
# How long the days holding tables are taken as known before they are listed again.
DAYS_KNOWN_FOR = 10.0
# A moment's successor in PostgreSQL's timestamps, which count microseconds.
_TICK = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Window:
    """Times from `since` (inclusive) to `until` (exclusive); None is unbounded."""

    since: datetime | None
    until: datetime | None


def windows(
    days: Iterable[date], *, since: datetime | None, until: datetime | None, growth: int = 2
) -> list[Window]:
    """Windows that cover [since, until) once, newest first: the newest day with a table,
    then `growth` times as many days in each next window; the last one open down to
    `since`."""
    starts = sorted(
        (start for day in set(days) if _within(start := day_start(day), since, until)),
        reverse=True,
    )
    cuts, size, taken = [], 1, 0
    while taken + size < len(starts):
        taken += size
        cuts.append(starts[taken - 1])
        size *= growth
    bounds = [until, *cuts, since]
    return [Window(bounds[i + 1], bounds[i]) for i in range(len(bounds) - 1)]


def until_of(until: datetime | None, after_moment: datetime | None) -> datetime | None:
    """The exclusive upper bound of a read bounded by `until` and resumed after a row at
    `after_moment`, which is newer than any row the read returns."""
    if after_moment is None:
        return until
    bound = after_moment + _TICK
    return bound if until is None else min(until, bound)


async def newest_rows(
    in_windows: list[Window],
    fetch: Callable[[Window, int, int], Awaitable[list[Row]]],
    *,
    limit: int,
    skip: int = 0,
    count: Callable[[Window, int], Awaitable[int]] | None = None,
    narrow: Callable[[Window, int], Awaitable[tuple[Window, int]]] | None = None,
) -> list[Row]:
    """`limit` rows past the first `skip`, newest first, window by window: `fetch(window,
    skip, limit)` reads a window's page, `count(window, cap)` how many of its rows there are,
    up to `cap` (needed only to skip). A window that the skip passes whole is only counted,
    not read. In the window where the skip ends, `narrow(window, skip)` may lower the
    window's top past rows it knows the skip passes, and says how many are left to skip."""
    if skip > 0 and count is None:
        raise ValueError("skipping rows needs a count of a window's rows")
    rows: list[Row] = []
    for window in in_windows:
        if skip > 0 and count is not None:
            # Counted one past the skip: a window that holds no more than it is passed whole.
            held = await count(window, skip + 1)
            if held <= skip:
                skip -= held
                continue
            if narrow is not None:
                window, skip = await narrow(window, skip)
        rows += await fetch(window, skip, limit - len(rows))
        skip = 0
        if len(rows) == limit:
            break
    return rows


async def capped_total(
    in_windows: list[Window], count: Callable[[Window, int], Awaitable[int]], *, cap: int
) -> int:
    """How many rows the windows hold, counted no further than `cap`."""
    total = 0
    for window in in_windows:
        total += await count(window, cap - total)
        if total >= cap:
            break
    return total


class KnownDays:
    """The days known to hold tables, listed again once they are DAYS_KNOWN_FOR old."""

    def __init__(self, list_days: Callable[[float | None], Awaitable[set[date]]]) -> None:
        """`list_days(deadline)` lists them, by the deadline it is given."""
        self._list_days = list_days
        self._days: set[date] = set()
        self._listed_at = float("-inf")

    async def __call__(self, deadline: float | None = None) -> set[date]:
        if time.monotonic() - self._listed_at > DAYS_KNOWN_FOR:
            self._days = await self._list_days(deadline)
            self._listed_at = time.monotonic()
        return self._days


def _within(start: datetime, since: datetime | None, until: datetime | None) -> bool:
    """Whether the day starting at `start` begins inside (since, until): a day that begins
    at or before `since` lies in the last window, which is open down to it."""
    return (since is None or start > since) and (until is None or start < until)
