"""The PostgreSQL detection tables' partitions: one per UTC day, created ahead of need and
dropped whole when the day ages out of the retention window.

The application's role may not create or drop tables; the migration gives it two functions
that do, as their owner, no more: roadwatch_create_days and roadwatch_drop_day.
"""

from collections.abc import Awaitable, Iterable
from datetime import date

import asyncpg

from roadwatch.errors import ConfigurationError

# One transaction may hold only so many locks (max_locks_per_transaction, shared by all):
# a new day locks a score of relations (four tables, their indexes and TOAST), so a batch
# whose times span years, valid every one, would otherwise fail the same way for ever.
DAYS_AT_ONCE = 50
# Ids forgotten in one transaction, in the partition's key order (its primary key's index).
RELEASE_AT_ONCE = 25_000
RELEASE_IDS = """
WITH chunk AS (
    SELECT "timestamp", id FROM {partition}
    WHERE ("timestamp", id) > (
        COALESCE($1::timestamptz, '-infinity'),
        COALESCE($2::uuid, '00000000-0000-0000-0000-000000000000')
    )
    ORDER BY "timestamp", id
    LIMIT $3
), released AS (
    DELETE FROM detection_ids k USING chunk c WHERE k.id = c.id
)
SELECT "timestamp", id, (SELECT count(*) FROM chunk) AS n
FROM chunk ORDER BY "timestamp" DESC, id DESC LIMIT 1
"""
LIST_DAYS = """
SELECT DISTINCT substring(c.relname from '_p(\\d{8})$')
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname = 'detections' AND p.relnamespace = 'public'::regnamespace
"""


async def existing_days(connection: asyncpg.Connection) -> set[date]:
    return days_named(await connection.fetch(LIST_DAYS))


def days_named(names: Iterable[asyncpg.Record]) -> set[date]:
    """The days of LIST_DAYS's rows."""
    return {date(int(n[:4]), int(n[4:6]), int(n[6:])) for (n,) in names if n}


async def create_days(connection: asyncpg.Connection, days: Iterable[date]) -> None:
    """Partitions for these days in every table, those missing, DAYS_AT_ONCE a transaction."""
    ordered = sorted(days)
    for first in range(0, len(ordered), DAYS_AT_ONCE):
        chunk = ordered[first : first + DAYS_AT_ONCE]
        await _granted(connection.execute("SELECT roadwatch_create_days($1::date[])", chunk))


async def drop_day(connection: asyncpg.Connection, day: date) -> None:
    """Remove the day's detections, alerts and counts, and uncount it from the per-make
    counts: its ids released first, a chunk at a time, then the rest in one transaction."""
    await release_ids(connection, day)
    await drop_released_day(connection, day)


async def drop_released_day(connection: asyncpg.Connection, day: date) -> None:
    """The part of removing a day that locks the tables: its counts and its partitions."""
    await _granted(connection.execute("SELECT roadwatch_drop_day($1::date)", day))


async def release_ids(connection: asyncpg.Connection, day: date) -> int:
    """Forget the day's ids in detection_ids, in transactions of RELEASE_AT_ONCE each, none
    of which locks more than those rows: savers and readers go on meanwhile. A record of
    that day replayed meanwhile is older than the retention, and refused as such."""
    partition = f"detections_p{day:%Y%m%d}"
    if await connection.fetchval("SELECT to_regclass($1)", partition) is None:
        return 0
    # The partition's name is made of digits of a date, never input.
    release = RELEASE_IDS.format(partition=partition)
    released, after = 0, (None, None)
    while True:
        last = await connection.fetchrow(release, *after, RELEASE_AT_ONCE)
        if last is None:
            return released
        released += last["n"]
        after = (last["timestamp"], last["id"])


async def _granted(call: Awaitable[str]) -> None:
    try:
        await call
    except asyncpg.InsufficientPrivilegeError:
        raise ConfigurationError(
            "this database role may not keep the detections' days: GRANT EXECUTE ON FUNCTION "
            "roadwatch_create_days(date[]), roadwatch_drop_day(date) TO it (`roadwatch infra "
            "up` does so for the local servers)"
        ) from None
