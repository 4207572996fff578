"""PostgreSQL's day partitions: made beside readers and savers, never in their way, and
only for detections that are stored."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from roadwatch.rejections import Reason, RecordsRefused
from roadwatch.stores import postgres_days
from roadwatch.stores.detection_store import DetectionStore
from roadwatch.stores.postgres import PostgresDetectionStore
from tests.helpers.factories import make_detection

pytestmark = [pytest.mark.postgres]

KNOWN = date(2024, 3, 1)


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


async def test_a_day_is_made_while_a_reader_holds_the_tables_and_holds_no_one_up(
    postgres_database: str,
) -> None:
    store = PostgresDetectionStore(postgres_database)
    await store.open()
    reader = await asyncpg.connect(postgres_database)
    maker = await asyncpg.connect(postgres_database)
    try:
        await store.save([make_detection(timestamp=at(KNOWN), make="Kia")])
        # A long read, its transaction open: it holds every detection table for reading.
        reading = reader.transaction()
        await reading.start()
        assert await reader.fetchval("SELECT count(*) FROM detections") == 1

        # Made as one partition of the table, a day waited for that reader (5 s, then failed).
        new_day = KNOWN + timedelta(days=1)
        await asyncio.wait_for(store.prepare_days({new_day}), timeout=3)

        # A day being made, its transaction open, holds up neither readers nor savers.
        making = maker.transaction()
        await making.start()
        await maker.execute("SELECT roadwatch_create_days($1::date[])", [KNOWN + timedelta(2)])
        other = await asyncpg.connect(postgres_database)
        try:
            await other.execute("SET lock_timeout = '2s'")
            assert await other.fetchval("SELECT count(*) FROM detections") == 1
            assert await other.fetchval("SELECT count(*) FROM alerts") == 0
        finally:
            await other.close()
        await asyncio.wait_for(store.save([make_detection(timestamp=at(new_day))]), timeout=3)
        await making.commit()
        await reading.commit()

        assert await _days(postgres_database) == {KNOWN, new_day, KNOWN + timedelta(days=2)}
        indexes = await reader.fetch(
            "SELECT indexname FROM pg_indexes WHERE tablename = $1",
            f"detections_p{new_day:%Y%m%d}",
        )
        # The parent's indexes, made on the partition as it was attached.
        assert len(indexes) == 5
        assert await store.count() == 2
    finally:
        await reader.close()
        await maker.close()
        await store.close()


async def test_no_day_is_made_for_a_detection_that_is_not_stored(postgres_database: str) -> None:
    store = PostgresDetectionStore(postgres_database)
    await store.open()
    try:
        first = make_detection(timestamp=at(KNOWN))
        await store.save([first])
        # Another process, which knows no day yet.
        fresh = PostgresDetectionStore(postgres_database)
        await fresh.open()
        try:
            elsewhere = KNOWN + timedelta(days=40)
            new = KNOWN + timedelta(days=41)
            with pytest.raises(RecordsRefused) as refused:
                await fresh.save(
                    [
                        make_detection(id=first.id, timestamp=at(elsewhere)),
                        make_detection(timestamp=at(new), make="Fiat"),
                    ]
                )
            assert [c.reason for c in refused.value.culprits.values()] == [Reason.ID_CONFLICT]
            # The batch without the record refused, as the indexer sends it again.
            assert await fresh.save([make_detection(timestamp=at(new), make="Fiat")]) == 1
            days = await _days(postgres_database)
            assert elsewhere not in days
            assert days == {KNOWN, new}
        finally:
            await fresh.close()
    finally:
        await store.close()


async def _days(url: str) -> set[date]:
    connection = await asyncpg.connect(url)
    try:
        return await postgres_days.existing_days(connection)
    finally:
        await connection.close()


@pytest.fixture
async def vacuum(store_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of its own, to hold locks as autovacuum would."""
    connection = await asyncpg.connect(store_url)
    yield connection
    await connection.close()


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
async def test_a_day_drops_while_autovacuum_holds_another_days_partition(
    store: DetectionStore, vacuum: asyncpg.Connection, store_url: str
) -> None:
    recent = KNOWN + timedelta(days=5)
    await store.save([make_detection(timestamp=at(day)) for day in (KNOWN, recent)])
    # The lock autovacuum holds on a partition it vacuums or analyzes: one the drop once
    # waited for (lock_timeout, 5 s), then failed, readers queued behind it.
    async with vacuum.transaction():
        await vacuum.execute(
            f"LOCK TABLE detections_p{recent:%Y%m%d} IN SHARE UPDATE EXCLUSIVE MODE"
        )
        dropping = store.drop_days_before(KNOWN + timedelta(days=1))
        assert await asyncio.wait_for(dropping, timeout=3) == [KNOWN]

    assert await _days(store_url) == {recent}
    assert await store.count() == 1
