"""Pages and counts over many days' tables, read a few days at a time newest first
(stores/postgres_windows.py), are those of the whole: every filter, skip, cursor and window,
with days empty and days crowded, and a day made after the reader listed the days."""

import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from roadwatch.domain import Alert, Detection, RuleRef
from roadwatch.stores import postgres_pages
from roadwatch.stores.detection_store import AlertFilter, DetectionFilter, Position, StoreBusy
from roadwatch.stores.driver_pool import DriverPool
from roadwatch.stores.postgres import PostgresDetectionStore
from roadwatch.stores.postgres_pages import Pages
from tests.helpers.factories import make_detection

pytestmark = pytest.mark.postgres

START = datetime(2025, 3, 1, tzinfo=UTC)
DAYS = 45
MAKES = ("Jeep", "Kia", "Audi")
CATEGORIES = ("SUV", "Sedan")
RULES = (
    RuleRef(uuid.UUID(int=1, version=4), "jeeps"),
    RuleRef(uuid.UUID(int=2, version=4), "kias"),
)


def _spread(rng: random.Random) -> list[Detection]:
    """Detections over DAYS days: most days a few, some none, one crowded."""
    stored = []
    for day in range(DAYS):
        per_day = 0 if day % 7 == 3 else (120 if day == DAYS - 5 else rng.randint(1, 8))
        for _ in range(per_day):
            # A crowded day's detections share a few instants: a cursor then sits among rows
            # of its own time.
            seconds = rng.choice((0, 60, 3600)) if per_day > 100 else rng.randint(0, 86_399)
            at = START + timedelta(days=day, seconds=seconds)
            stored.append(
                make_detection(
                    timestamp=at, make=rng.choice(MAKES), category=rng.choice(CATEGORIES)
                )
            )
    return stored


def _newest_first(rows: list[Detection]) -> list[Detection]:
    return sorted(rows, key=lambda d: (d.timestamp, d.id), reverse=True)


def _matching(
    stored: list[Detection], where: DetectionFilter, after: Position | None
) -> list[Detection]:
    return _newest_first(
        [
            d
            for d in stored
            if (where.make is None or d.make == where.make)
            and (where.category is None or d.category == where.category)
            and (where.since is None or d.timestamp >= where.since)
            and (where.until is None or d.timestamp < where.until)
            and (after is None or (d.timestamp, d.id) < (after.timestamp, after.id))
        ]
    )


@pytest.mark.parametrize("narrow_past", [postgres_pages.NARROW_PAST, 1])
async def test_pages_and_counts_over_many_days_are_those_of_the_whole(
    postgres_database: str, narrow_past: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Narrowed by the counts over time from the first row skipped, or only past many.
    monkeypatch.setattr(postgres_pages, "NARROW_PAST", narrow_past)
    rng = random.Random(7)
    stored = _spread(rng)
    store = PostgresDetectionStore(postgres_database)
    await store.open()
    try:
        await store.save(stored)
        everything = _newest_first(stored)
        filters = [
            DetectionFilter(),
            DetectionFilter(make="Audi"),
            DetectionFilter(since=START + timedelta(days=10, hours=5)),
            DetectionFilter(until=START + timedelta(days=30)),
            DetectionFilter(
                make="Kia", since=START + timedelta(days=2), until=START + timedelta(days=41)
            ),
            DetectionFilter(make="Nope"),
            DetectionFilter(category="Sedan", until=START + timedelta(days=40, seconds=30)),
            DetectionFilter(make="Jeep", category="SUV"),
            DetectionFilter(
                since=START + timedelta(days=1, minutes=7), until=START + timedelta(days=38)
            ),
        ]
        cursors = [None, *(Position(d.timestamp, d.id) for d in rng.sample(everything, 6))]
        for where in filters:
            for after in cursors:
                expected = _matching(stored, where, after)
                skips = (
                    (0, 1),
                    (0, 50),
                    (3, 7),
                    (100, 40),
                    (150, 10),
                    (max(0, len(expected) - 1), 5),
                )
                for skip, limit in (*skips, (len(expected), 5)):
                    page = await store.list(where, skip=skip, limit=limit, after=after)
                    assert page == expected[skip : skip + limit], (where, after, skip, limit)
            total = len(_matching(stored, where, None))
            for cap in (1, 10, total, 10_000):
                assert await store.count(where, cap=cap) == min(total, cap + 1), (where, cap)
            assert await store.count(where) == total
    finally:
        await store.close()


async def test_deep_skips_narrowed_by_the_counts_are_those_of_the_whole(
    postgres_database: str,
) -> None:
    # Crowded minutes, hours and days, so that skips past a thousand end in each.
    rng = random.Random(23)
    stored = [
        make_detection(
            timestamp=START
            + timedelta(days=rng.choice((0, 1, 1, 2)), hours=rng.choice((0, 5, 23)))
            + timedelta(minutes=rng.choice((0, 1, 59)), seconds=rng.randint(0, 59)),
            make=rng.choice(MAKES),
            category=rng.choice(CATEGORIES),
        )
        for _ in range(6_000)
    ]
    store = PostgresDetectionStore(postgres_database)
    await store.open()
    try:
        await store.save(stored)
        filters = [
            DetectionFilter(),
            DetectionFilter(make="Kia"),
            DetectionFilter(category="SUV"),
            DetectionFilter(since=START + timedelta(hours=5), until=START + timedelta(days=2)),
            DetectionFilter(since=START + timedelta(minutes=1), until=START + timedelta(days=2)),
            DetectionFilter(until=START + timedelta(days=1, hours=5, minutes=59)),
            DetectionFilter(since=START + timedelta(seconds=30)),
            DetectionFilter(make="Jeep", category="SUV"),
        ]
        for where in filters:
            expected = _matching(stored, where, None)
            depths = {1_000, 1_500, len(expected) // 2, len(expected) - 3, len(expected) + 1}
            depths |= {rng.randrange(1_000, max(1_001, len(expected))) for _ in range(4)}
            for skip in sorted(depths):
                page = await store.list(where, skip=skip, limit=700)
                assert page == expected[skip : skip + 700], (where, skip)

        # Narrowed down to the very minute the skip ends in, where the counts can say.
        reads = DriverPool(postgres_database)
        await reads.open()
        try:
            for where in filters[:4]:
                expected = _matching(stored, where, None)
                skip = len(expected) * 2 // 3
                window, left = await Pages(reads).narrowed(where, skip, None)
                assert window.since == where.since
                assert window.until is not None, where
                assert 0 <= left < skip
                assert window.until - expected[skip].timestamp <= timedelta(minutes=1)
                # The rows past the lowered top are those the skip passes, and no more.
                assert expected[skip - left - 1].timestamp >= window.until
                assert expected[skip - left].timestamp < window.until
        finally:
            await reads.close()
    finally:
        await store.close()


async def test_a_day_made_after_the_reader_listed_the_days_is_read(
    postgres_database: str,
) -> None:
    older = [make_detection(timestamp=START + timedelta(days=n)) for n in range(5)]
    writer, reader = (
        PostgresDetectionStore(postgres_database),
        PostgresDetectionStore(postgres_database),
    )
    await writer.open()
    await reader.open()
    try:
        await writer.save(older)
        assert await reader.list(limit=10) == _newest_first(older)
        # Days before and after those the reader knows, within the time it keeps them.
        newer = [make_detection(timestamp=START + timedelta(days=n, hours=1)) for n in (-20, 2, 30)]
        await writer.save(newer)
        assert await reader.list(limit=10) == _newest_first(older + newer)
        for skip in (1, 2, 6, 7):
            assert await reader.list(skip=skip, limit=10) == _newest_first(older + newer)[skip:]
        assert await reader.count(cap=100) == len(older + newer)
    finally:
        await writer.close()
        await reader.close()


async def test_a_rules_alerts_over_many_days_are_those_of_the_whole(
    postgres_database: str,
) -> None:
    rng = random.Random(11)
    stored = _spread(rng)
    alerts = [
        Alert(d, (RULES[0],) if d.make == "Jeep" else RULES) for d in stored if d.make != "Audi"
    ]
    store = PostgresDetectionStore(postgres_database)
    await store.open()
    try:
        await store.save(stored)
        await store.save_alerts(alerts)
        for rule in (None, RULES[1].id):
            held = _newest_first(
                [a.detection for a in alerts if rule is None or rule in {r.id for r in a.rules}]
            )
            for since, until in (
                (None, None),
                (START + timedelta(days=12), START + timedelta(days=40)),
            ):
                window = [
                    d
                    for d in held
                    if (since is None or d.timestamp >= since)
                    and (until is None or d.timestamp < until)
                ]
                after = None
                for _ in range(len(window) // 20 + 2):
                    page = await store.alerts(
                        AlertFilter(rule, since, until), limit=20, after=after
                    )
                    position = 0 if after is None else window.index(_by_id(held, after)) + 1
                    assert [a.detection for a in page] == window[position : position + 20]
                    if not page:
                        break
                    after = Position(page[-1].detection.timestamp, page[-1].detection.id)
    finally:
        await store.close()


async def test_an_alert_whose_rules_were_edited_names_those_still_as_written(
    postgres_database: str,
) -> None:
    rule = RuleRef(uuid.uuid4(), "kept")
    alert = Alert(make_detection(timestamp=START), (rule,))
    store = PostgresDetectionStore(postgres_database)
    await store.open()
    try:
        await store.save([alert.detection])
        await store.save_alerts([alert])
        connection = await asyncpg.connect(postgres_database)
        edited = f'[{{"id": "x"}}, {{"id": "{rule.id}", "name": "kept"}}, 7, null]'
        try:
            await connection.execute("UPDATE alerts SET rules = $1::jsonb", edited)
        finally:
            await connection.close()
        assert await store.alerts(limit=5) == [alert]
    finally:
        await store.close()


def _by_id(detections: list[Detection], position: Position) -> Detection:
    return next(d for d in detections if d.id == position.id)


async def test_a_reads_deadline_bounds_its_wait_for_a_connection(postgres_database: str) -> None:
    reads = DriverPool(postgres_database, size=1, query_timeout=30.0)
    await reads.open()
    try:
        async with reads.connection():  # the pool's one connection, held by another read
            deadline = time.monotonic() + 0.2
            # Far sooner than the 30 s a connection may be waited for by one statement.
            async with asyncio.timeout(10):
                with pytest.raises(StoreBusy):
                    await reads.fetch("SELECT 1", deadline=deadline)
        assert await reads.fetchval("SELECT 1", deadline=reads.deadline()) == 1
    finally:
        await reads.close()
