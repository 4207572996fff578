"""The detection schema's migrations on a database that holds data already."""

import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest

from roadwatch.stores.detection_store import Dimension
from roadwatch.stores.postgres import PostgresDetectionStore
from roadwatch.stores.postgres_statements import COLUMNS
from roadwatch.stores.sql import async_engine, migrate, migrations_folder
from roadwatch.time_buckets import Bucket

pytestmark = [pytest.mark.postgres]

FIRST_DAY = datetime(2024, 5, 1, tzinfo=UTC)
ROWS = 20_000
DAYS = 3
MAKES = ["Jeep", "Ford", "Kia", "Toyota"]


async def at_revision(url: str, revision: str) -> None:
    engine = async_engine(url)
    try:
        await migrate(
            engine,
            folder=migrations_folder("detections"),
            version_table="alembic_version_detections",
            to=revision,
        )
    finally:
        await engine.dispose()


async def fill_unpartitioned(url: str) -> list[tuple[datetime, str, str]]:
    """Detections spread over DAYS days, their per-make counts, and an alert for each Jeep,
    written as the schema of revision 0003 holds them."""
    step = timedelta(days=DAYS) / ROWS
    rows = [
        (uuid.uuid4(), FIRST_DAY + step * i, 2011, MAKES[i % 4], "M", ["SUV", "Van"][i % 2])
        for i in range(ROWS)
    ]
    connection = await asyncpg.connect(url.replace("+asyncpg", ""))
    try:
        await connection.copy_records_to_table(
            "detections",
            records=[(*row, "t", 0, offset) for offset, row in enumerate(rows)],
            columns=COLUMNS,
        )
        await connection.executemany(
            "INSERT INTO make_counts (make, count) VALUES ($1, $2)",
            list(Counter(row[3] for row in rows).items()),
        )
        rule = uuid.uuid4()
        await connection.execute(
            """
            INSERT INTO alerts SELECT id, "timestamp", year, make, model, category,
                source_topic, source_partition, source_offset,
                jsonb_build_array(jsonb_build_object('id', $1::text, 'name', 'jeeps'))
            FROM detections WHERE make = 'Jeep'
            """,
            str(rule),
        )
        await connection.execute(
            """INSERT INTO alert_rules SELECT $1::uuid, "timestamp", id FROM alerts""", rule
        )
    finally:
        await connection.close()
    return [(row[1], row[3], row[5]) for row in rows]


async def test_an_unpartitioned_table_with_data_is_carried_into_day_partitions(
    postgres_database: str,
) -> None:
    await at_revision(postgres_database, "0003")
    rows = await fill_unpartitioned(postgres_database)

    started = time.perf_counter()
    store = PostgresDetectionStore(postgres_database)
    await store.open()  # migrates to the newest revision
    elapsed = time.perf_counter() - started
    try:
        print(f"\nmigrated {ROWS:,} detections in {elapsed:.2f} s")
        assert await store.count() == ROWS
        assert await store.count_by_make() == await store.group_by_make()
        assert await store.count_by_make() == dict(Counter(r[1] for r in rows).most_common())
        # Counted per category from the rows held when the counts began (0010).
        assert await store.count_by_category() == dict(Counter(r[2] for r in rows))
        newest = max(rows)
        assert (await store.list(limit=1))[0].timestamp == newest[0]
        assert len(await store.alerts(limit=1000)) == 1000

        # The counts over time were computed from the rows carried over.
        since, until = FIRST_DAY, FIRST_DAY + timedelta(days=DAYS)
        by_day = await store.timeline(
            bucket=Bucket.DAY, since=since, until=until, by=Dimension.CATEGORY
        )
        expected = Counter((Bucket.DAY.floor(at), category) for at, _make, category in rows)
        assert [b.counts for b in by_day] == [
            {c: expected[(b.start, c)] for c in ("SUV", "Van") if expected[(b.start, c)]}
            for b in by_day
        ]
        assert sum(b.alerts for b in by_day) == ROWS // 4
        window = (FIRST_DAY + timedelta(hours=7, minutes=13), FIRST_DAY + timedelta(days=2))
        assert await store.makes_between(*window) == dict(
            Counter(make for at, make, _c in rows if window[0] <= at < window[1]).most_common()
        )

        # And a day of it can go whole.
        assert await store.drop_days_before(date(2024, 5, 2)) == [date(2024, 5, 1)]
        assert await store.count_by_make() == await store.group_by_make()
        assert await store.count_by_category() == dict(
            Counter(c for at, _m, c in rows if at >= FIRST_DAY + timedelta(days=1))
        )
        assert await store.count() == sum(
            1 for at, _m, _c in rows if at >= FIRST_DAY + timedelta(days=1)
        )
    finally:
        await store.close()


async def test_every_days_listing_indexes_hold_a_column_and_the_time_ascending(
    postgres_database: str,
) -> None:
    await at_revision(postgres_database, "0006")
    connection = await asyncpg.connect(postgres_database)
    try:
        await connection.execute(
            "SELECT roadwatch_create_days($1)", [date(2024, 5, 1), date(2024, 5, 2)]
        )
        await at_revision(postgres_database, "head")
        await connection.execute("CREATE TABLE detections_p20240503 (LIKE detections)")
        await connection.execute(
            "ALTER TABLE detections ATTACH PARTITION detections_p20240503 "
            "FOR VALUES FROM ('2024-05-03') TO ('2024-05-04')"
        )
        indexes = await connection.fetch(
            "SELECT tablename, indexdef FROM pg_indexes "
            "WHERE tablename LIKE 'detections_p%' AND indexname NOT LIKE '%pkey'"
        )
        by_day = Counter(row["tablename"] for row in indexes)
        assert by_day == {f"detections_p2024050{d}": 4 for d in (1, 2, 3)}
        for row in indexes:
            assert row["indexdef"].split(" USING btree ")[1] in {
                f'({column}, "timestamp")' for column in ("make", "model", "category", "year")
            }
        # Empty tables: the planner is told off the plans it would take for so few rows.
        await connection.execute("SET enable_seqscan = off; SET enable_bitmapscan = off")
        for column, value in (("make", "Jeep"), ("model", "X"), ("category", "SUV"), ("year", 1)):
            plan = "\n".join(
                row[0]
                for row in await connection.fetch(
                    # A column name of the four above; the value travels as an argument.
                    f"EXPLAIN SELECT * FROM detections WHERE {column} = $1 "  # noqa: S608
                    'ORDER BY "timestamp" DESC, id DESC LIMIT 50',
                    value,
                )
            )
            assert f"Index Scan Backward using detections_p20240501_{column}_timestamp_idx" in plan
    finally:
        await connection.close()


async def test_the_days_of_the_counts_leave_half_of_each_page_free(
    postgres_database: str,
) -> None:
    await at_revision(postgres_database, "0008")
    connection = await asyncpg.connect(postgres_database)
    try:
        await connection.execute("SELECT roadwatch_create_days($1)", [date(2024, 5, 1)])
        await at_revision(postgres_database, "head")
        await connection.execute("SELECT roadwatch_create_days($1)", [date(2024, 5, 2)])
        rows = await connection.fetch(
            "SELECT c.relname, c.reloptions FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass",
            "time_counts",
        )
        options = {row["relname"]: row["reloptions"] for row in rows}
        # A day made before the migration, and one made after it.
        assert options == {
            "time_counts_p20240501": ["fillfactor=50"],
            "time_counts_p20240502": ["fillfactor=50"],
        }
        detections_day = await connection.fetchval(
            "SELECT reloptions FROM pg_class WHERE relname = 'detections_p20240502'"
        )
        assert detections_day is None
    finally:
        await connection.close()
