"""A save that PostgreSQL rolls back to break a deadlock is run again, and counted once."""

import asyncio
import logging
from datetime import UTC, datetime

import asyncpg
import pytest

from roadwatch.stores.postgres import PostgresDetectionStore
from tests.helpers.factories import make_detection
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.postgres]

AT = datetime(2024, 3, 1, 12, tzinfo=UTC)


async def test_a_save_chosen_as_a_deadlocks_victim_is_run_again(
    postgres_database: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = PostgresDetectionStore(postgres_database)
    await store.open()
    other = await asyncpg.connect(postgres_database)
    try:
        await store.save([make_detection(make=m, timestamp=AT) for m in ("Alfa", "Zulu")])
        # Another transaction holds Zulu's count, and never gives up waiting itself: the
        # save, which counts Alfa then Zulu, is the one PostgreSQL rolls back.
        holding = other.transaction()
        await holding.start()
        await other.execute("SET LOCAL deadlock_timeout = '60s'")
        await other.execute("UPDATE make_counts SET count = count WHERE make = 'Zulu'")
        with caplog.at_level(logging.WARNING):
            saving = asyncio.create_task(
                store.save([make_detection(make=m, timestamp=AT) for m in ("Alfa", "Zulu")])
            )

            async def save_waits() -> bool:
                waiting = await other.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database() AND pid <> pg_backend_pid()"
                )
                return bool(waiting)

            await eventually(save_waits, within=10, what="the save waiting for Zulu")
            # Now wait for Alfa, which the save holds: a deadlock, which the save loses.
            await other.execute("UPDATE make_counts SET count = count WHERE make = 'Alfa'")
            await holding.commit()
            assert await asyncio.wait_for(saving, timeout=30) == 2
        assert await store.count_by_make() == {"Alfa": 2, "Zulu": 2}
        assert "40P01" in caplog.text or "deadlock" in caplog.text.lower()
    finally:
        await other.close()
        await store.close()
