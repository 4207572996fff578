"""Reads newest first, window by window: the windows cover a read's times once, newest day
first, and a page or a count read through them is the page or the count of the whole."""

import asyncio
import itertools
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roadwatch.stores import postgres_windows
from roadwatch.stores.detection_store import StoreBusy
from roadwatch.stores.driver_pool import DriverPool
from roadwatch.stores.postgres_windows import (
    KnownDays,
    Window,
    capped_total,
    newest_rows,
    until_of,
    windows,
)

FIRST_DAY = date(2026, 1, 1)
days = st.sets(st.integers(0, 400).map(lambda n: FIRST_DAY + timedelta(days=n)), max_size=60)
moments = st.integers(-2 * 24 * 60, 403 * 24 * 60).map(
    lambda minutes: datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
)
bounds = st.tuples(st.none() | moments, st.none() | moments).filter(
    lambda b: b[0] is None or b[1] is None or b[0] < b[1]
)


def _holds(window: Window, moment: datetime) -> bool:
    return (window.since is None or window.since <= moment) and (
        window.until is None or moment < window.until
    )


@given(days, bounds, st.sampled_from([2, 8, 1_000_000]), st.lists(moments, max_size=30))
def test_windows_cover_the_times_read_once_newest_first(
    held: set[date],
    since_until: tuple[datetime | None, datetime | None],
    growth: int,
    probes: list[datetime],
) -> None:
    since, until = since_until
    found = windows(held, since=since, until=until, growth=growth)
    assert found[0].until == until
    assert found[-1].since == since
    for newer, older in itertools.pairwise(found):
        assert newer.since == older.until
        assert newer.since is not None
        assert older.since is None or older.since < newer.since
    for moment in probes:
        inside = (since is None or since <= moment) and (until is None or moment < until)
        assert sum(_holds(window, moment) for window in found) == (1 if inside else 0)


def test_the_first_window_holds_the_newest_day_alone_then_each_grows() -> None:
    held = {FIRST_DAY + timedelta(days=n) for n in range(10)}
    found = windows(held, since=None, until=None)
    day = timedelta(days=1)
    newest = datetime(2026, 1, 10, tzinfo=UTC)
    assert found == [
        Window(newest, None),
        Window(newest - 2 * day, newest),
        Window(newest - 6 * day, newest - 2 * day),
        Window(None, newest - 6 * day),
    ]
    assert windows(held, since=None, until=None, growth=1_000_000) == [
        Window(newest, None),
        Window(None, newest),
    ]
    assert windows(set(), since=None, until=newest) == [Window(None, newest)]


def test_a_read_resumed_after_a_row_ends_just_past_it() -> None:
    moment = datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert until_of(None, moment) == moment + timedelta(microseconds=1)
    assert until_of(moment, moment + timedelta(days=1)) == moment
    assert until_of(moment, None) == moment


@given(
    days,
    st.lists(moments, max_size=80),
    bounds,
    st.integers(0, 100),
    st.integers(1, 40),
)
def test_a_page_read_window_by_window_is_the_page_of_the_whole(
    held: set[date],
    stored: list[datetime],
    since_until: tuple[datetime | None, datetime | None],
    skip: int,
    limit: int,
) -> None:
    since, until = since_until
    rows = sorted(
        ((moment, n) for n, moment in enumerate(stored) if _holds(Window(since, until), moment)),
        reverse=True,
    )

    async def fetch(window: Window, skip: int, limit: int) -> list[tuple[datetime, int]]:
        return [row for row in rows if _holds(window, row[0])][skip : skip + limit]

    async def count(window: Window, cap: int) -> int:
        return min(cap, sum(_holds(window, row[0]) for row in rows))

    in_windows = windows(held, since=since, until=until)
    page = asyncio.run(newest_rows(in_windows, fetch, limit=limit, skip=skip, count=count))
    assert page == rows[skip : skip + limit]
    total = asyncio.run(capped_total(in_windows, count, cap=limit))
    assert total == min(limit, len(rows))


def test_the_days_are_listed_again_only_once_they_are_old(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    listed: list[float | None] = []

    async def list_days(deadline: float | None) -> set[date]:
        listed.append(deadline)
        return {FIRST_DAY + timedelta(days=len(listed))}

    async def calls(known: KnownDays) -> list[set[date]]:
        return [await known(1.0), await known(2.0)]

    # Within DAYS_KNOWN_FOR the listing is kept; its deadline is the first reader's.
    assert asyncio.run(calls(KnownDays(list_days))) == [{FIRST_DAY + timedelta(days=1)}] * 2
    assert listed == [1.0]
    # Once old, the days are listed again, by the deadline of the read that asks.
    monkeypatch.setattr(postgres_windows, "DAYS_KNOWN_FOR", -1.0)
    assert asyncio.run(calls(KnownDays(list_days))) == [
        {FIRST_DAY + timedelta(days=2)},
        {FIRST_DAY + timedelta(days=3)},
    ]
    assert listed == [1.0, 1.0, 2.0]


def test_a_statement_past_its_reads_deadline_is_not_sent() -> None:
    # Not opened: a statement sent would fail otherwise than as StoreBusy.
    reads = DriverPool("postgresql://nobody@127.0.0.1:1/none", query_timeout=3.0)
    deadline = reads.deadline()
    assert deadline is not None
    assert deadline - time.monotonic() == pytest.approx(3.0, abs=0.5)
    with pytest.raises(StoreBusy):
        asyncio.run(reads.fetch("SELECT 1", deadline=time.monotonic() - 0.001))
    assert DriverPool("postgresql://nobody@127.0.0.1:1/none").deadline() is None


def test_a_skip_ending_at_or_inside_a_window_of_capped_counts_is_the_page_of_the_whole() -> None:
    # Crowded days, so that a skip ends inside a window, at its last row, and just past it.
    held = {FIRST_DAY + timedelta(days=n) for n in range(5)}
    start = datetime.combine(FIRST_DAY, datetime.min.time(), UTC)
    rows = sorted(
        (
            (start + timedelta(days=day, hours=hour), day * 10 + hour)
            for day in range(5)
            for hour in range(3)
        ),
        reverse=True,
    )
    in_windows = windows(held, since=None, until=None)

    async def fetch(window: Window, skip: int, limit: int) -> list[tuple[datetime, int]]:
        return [row for row in rows if _holds(window, row[0])][skip : skip + limit]

    async def count(window: Window, cap: int) -> int:
        return min(cap, sum(_holds(window, row[0]) for row in rows))

    for skip, limit in itertools.product(range(len(rows) + 2), (1, 2, 4)):
        page = asyncio.run(newest_rows(in_windows, fetch, limit=limit, skip=skip, count=count))
        assert page == rows[skip : skip + limit], (skip, limit)
