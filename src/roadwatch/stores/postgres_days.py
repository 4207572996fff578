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
LIST_DAYS = """
SELECT DISTINCT substring(c.relname from '_p(\\d{8})$')
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_class p ON p.oid = i.inhparent
WHERE p.relname = 'detections' AND p.relnamespace = 'public'::regnamespace
"""


async def existing_days(connection: asyncpg.Connection) -> set[date]:
    names = await connection.fetch(LIST_DAYS)
    return {date(int(n[:4]), int(n[4:6]), int(n[6:])) for (n,) in names if n}


async def create_days(connection: asyncpg.Connection, days: Iterable[date]) -> None:
    """Partitions for these days in every table, those missing, DAYS_AT_ONCE a transaction."""
    ordered = sorted(days)
    for first in range(0, len(ordered), DAYS_AT_ONCE):
        chunk = ordered[first : first + DAYS_AT_ONCE]
        await _granted(connection.execute("SELECT roadwatch_create_days($1::date[])", chunk))


async def drop_day(connection: asyncpg.Connection, day: date) -> None:
    """Remove the day's detections, alerts and counts, and uncount it from the per-make
    counts, in one transaction."""
    await _granted(connection.execute("SELECT roadwatch_drop_day($1::date)", day))


async def _granted(call: Awaitable[str]) -> None:
    try:
        await call
    except asyncpg.InsufficientPrivilegeError:
        raise ConfigurationError(
            "this database role may not keep the detections' days: GRANT EXECUTE ON FUNCTION "
            "roadwatch_create_days(date[]), roadwatch_drop_day(date) TO it (`roadwatch infra "
            "up` does so for the local servers)"
        ) from None
