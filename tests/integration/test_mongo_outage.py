"""FerretDB up while its PostgreSQL is away: every read of the MongoDB store says the
database cannot be reached (the API's clear 503), as the PostgreSQL store's do, and none
comes out as the raw OperationFailure in which FerretDB reports it (once a 500). Once the
database is back, the reads answer again."""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from roadwatch.bootstrap.stores import detection_store
from roadwatch.stores.detection_store import DetectionFilter, DetectionStore, StoreUnreachable
from tests.helpers.factories import make_detection
from tests.helpers.servers import own_ferretdb, own_postgres
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.postgres, pytest.mark.mongo, pytest.mark.slow]

FORD = DetectionFilter(make="Ford")


def _reads(store: DetectionStore) -> dict[str, Callable[[], Awaitable[Any]]]:
    return {
        "a page of detections": lambda: store.list(limit=10),
        "a page of one make": lambda: store.list(FORD, limit=10),
        "a count": lambda: store.count(FORD),
        "counts by make": store.count_by_make,
        "counts by category": store.count_by_category,
        "a page of alerts": lambda: store.alerts(limit=10),
    }


async def test_reads_while_ferretdbs_database_is_away_say_it_cannot_be_reached(
    tmp_path: Path,
) -> None:
    async with (
        own_postgres(tmp_path) as database,
        own_ferretdb(tmp_path, database) as ferretdb,
    ):
        store = detection_store(ferretdb.url, query_timeout=10)
        await store.open()
        try:
            await store.save([make_detection() for _ in range(20)])
            for read in _reads(store).values():
                await read()

            await asyncio.to_thread(database.down)
            # Twice: FerretDB first reports its connections ended, then its dials refused.
            for _ in range(2):
                for read in _reads(store).values():
                    with pytest.raises(StoreUnreachable):
                        await read()

            await database.up()

            async def all_answer() -> bool:
                try:
                    for read in _reads(store).values():
                        await read()
                except StoreUnreachable:
                    return False
                return True

            await eventually(all_answer, within=30, what="reads answering again")
        finally:
            await store.close()
