"""The counts over time in PostgreSQL: kept by each save, read by window and as a series.

`time_counts` holds one row per (bucket, dimension, start, key): detections per minute, hour
and day by make and by category, alerts by rule and in all. A read touches (buckets
times keys) rows, never a detection.
"""

from collections.abc import Sequence
from datetime import datetime

import orjson

from roadwatch.stores.detection_store import Dimension, TimelineBucket, largest_first
from roadwatch.stores.driver_pool import DriverPool
from roadwatch.time_buckets import Bucket, cover

# A range of one bucket's starts, [first, end); None is unbounded.
Span = tuple[Bucket, datetime | None, datetime | None]

# The rows of each bucket and key, added to what is counted already. Keys are taken in a
# fixed order so that two savers never lock the same count rows in opposite orders.
_ADDED_TO_COUNTS = """
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4
    ON CONFLICT (bucket, dimension, start, key)
    DO UPDATE SET count = time_counts.count + EXCLUDED.count
)"""
# Grouped by minute first, so the three buckets are rolled up from a few hundred rows, not
# from every detection three times. A detection's minute is binned from a UTC midnight:
# date_trunc in a named zone looks the zone up for every row.
COUNT_INSERTED = (
    """
counted_in_time AS (
    INSERT INTO time_counts (bucket, dimension, start, key, count)
    SELECT b.bucket, k.dimension, date_trunc(b.bucket, m.minute, 'UTC'), k.key, sum(m.n)
    FROM (
        SELECT date_bin('1 minute', "timestamp", TIMESTAMPTZ '2000-01-01 00:00:00+00')
                   AS minute,
               make, category, count(*) AS n
        FROM inserted GROUP BY 1, 2, 3
    ) AS m
    CROSS JOIN (VALUES ('minute'), ('hour'), ('day')) AS b(bucket)
    CROSS JOIN LATERAL (VALUES ('make', m.make), ('category', m.category)) AS k(dimension, key)"""  # noqa: S608 (constants only)
    + _ADDED_TO_COUNTS
)
# An alert counts once in all ('alerts', 'all'), and once for each rule it matched; grouped
# by minute first, as the detections are.
COUNT_INSERTED_ALERTS = (
    """
counted_in_time AS (
    INSERT INTO time_counts (bucket, dimension, start, key, count)
    SELECT b.bucket, m.dimension, date_trunc(b.bucket, m.minute, 'UTC'), m.key, sum(m.n)
    FROM (
        SELECT date_bin('1 minute', a."timestamp", TIMESTAMPTZ '2000-01-01 00:00:00+00')
                   AS minute,
               a.dimension, a.key, count(*) AS n
        FROM (
            SELECT "timestamp", 'alerts' AS dimension, 'all' AS key FROM inserted
            UNION ALL
            SELECT inserted."timestamp", 'rule', rule ->> 'id'
            FROM inserted, jsonb_array_elements(inserted.rules) AS rule
        ) AS a
        GROUP BY 1, 2, 3
    ) AS m
    CROSS JOIN (VALUES ('minute'), ('hour'), ('day')) AS b(bucket)"""  # noqa: S608 (constants only)
    + _ADDED_TO_COUNTS
)
# One row per bucket that holds anything: its counts as one JSON object, largest first (ties
# by key, in the order of Python's strings), and its alerts; assembled by the server, which
# costs less than decoding a row per key.
SERIES = """
SELECT start,
       coalesce(
           json_object_agg(key, count ORDER BY count DESC, key COLLATE "C")
               FILTER (WHERE dimension = $2),
           '{}'
       ),
       coalesce(sum(count) FILTER (WHERE dimension = 'alerts'), 0)
FROM time_counts
WHERE bucket = $1 AND dimension IN ($2, 'alerts') AND start >= $3 AND start < $4
GROUP BY start
"""
# $1: the dimension.
OF_DIMENSION = "SELECT key, count FROM time_counts WHERE dimension = $1"


async def counts_between(
    reads: DriverPool, by: Dimension, since: datetime, until: datetime
) -> dict[str, int]:
    """Detections per key of `by` in [since, until), both on minute edges."""
    ranges = cover(since, until)
    if not ranges:
        return {}
    args: list[object] = [by.value]
    union = _in_spans(OF_DIMENSION, ranges, args)
    # Placeholders only: the values travel as arguments.
    sql = f"SELECT key, sum(count)::bigint FROM ({union}) AS c GROUP BY key"  # noqa: S608
    rows = await reads.fetch(sql, *args)
    return largest_first({key: int(count) for key, count in rows if count > 0})


async def series(
    reads: DriverPool, *, bucket: Bucket, since: datetime, until: datetime, by: Dimension
) -> list[TimelineBucket]:
    """Every bucket overlapping [since, until), empty ones included, oldest first."""
    starts = list(bucket.starts(since, until))
    if not starts:
        return []
    rows = await reads.fetch(SERIES, bucket.value, by.value, starts[0], starts[-1] + bucket.length)
    found = {start: (counts, int(alerts)) for start, counts, alerts in rows}
    empty = ("{}", 0)
    return [
        TimelineBucket(start, orjson.loads(found.get(start, empty)[0]), found.get(start, empty)[1])
        for start in starts
    ]


async def detections_between(
    reads: DriverPool,
    *,
    dimension: Dimension,
    key: str | None,
    since: datetime | None,
    until: datetime | None,
    deadline: float | None = None,
) -> int | None:
    """How many detections [since, until) holds, of one key of the dimension or of all (each
    detection is counted once under its category); None if an edge is not one the counts
    can answer: off a whole minute, or off a whole day beside an open end."""
    spans = spans_of(since, until)
    if spans is None:
        return None
    args: list[object] = []
    union = _in_spans(_of_key("count", dimension, key, args), spans, args)
    # Placeholders only: the values travel as arguments.
    sql = f"SELECT coalesce(sum(count), 0)::bigint FROM ({union}) AS c"  # noqa: S608
    return int(await reads.fetchval(sql, *args, deadline=deadline))


async def per_bucket(
    reads: DriverPool,
    *,
    dimension: Dimension,
    key: str | None,
    bucket: Bucket,
    since: datetime | None,
    until: datetime | None,
    deadline: float | None = None,
) -> list[tuple[datetime, int]]:
    """The detections of each `bucket` that starts in [since, until), newest first, of one
    key of the dimension or of all; buckets with none left out."""
    args: list[object] = []
    union = _in_spans(_of_key("start, count", dimension, key, args), [(bucket, since, until)], args)
    # Placeholders only: the values travel as arguments.
    sql = (
        f"SELECT start, sum(count)::bigint AS n FROM ({union}) AS c"  # noqa: S608
        " GROUP BY start HAVING sum(count) > 0 ORDER BY start DESC"
    )
    rows = await reads.fetch(sql, *args, deadline=deadline)
    return [(start, int(n)) for start, n in rows]


def _of_key(columns: str, dimension: Dimension, key: str | None, args: list[object]) -> str:
    """A select of `columns` from the counts of one key of the dimension, or of all; the
    values go in `args`, which must be empty."""
    args.append(dimension.value)
    select = f"SELECT {columns} FROM time_counts WHERE dimension = $1"  # noqa: S608
    if key is None:
        return select
    args.append(key)
    return f"{select} AND key = $2"


def _in_spans(select: str, spans: Sequence[Span], args: list[object]) -> str:
    """`select` (whose WHERE clause it extends) once for each span, bounded to the span's
    bucket and starts, in one UNION ALL; the bounds' values are appended to `args`."""
    parts = []
    for bucket, first, end in spans:
        args.append(bucket.value)
        conditions = [f"bucket = ${len(args)}"]
        if first is not None:
            args.append(first)
            conditions.append(f"start >= ${len(args)}")
        if end is not None:
            args.append(end)
            conditions.append(f"start < ${len(args)}")
        parts.append(f"{select} AND {' AND '.join(conditions)}")
    return " UNION ALL ".join(parts)


def spans_of(since: datetime | None, until: datetime | None) -> list[Span] | None:
    """[since, until) as ranges of whole buckets, days open at an open end; None if it
    cannot be."""
    if not all(moment is None or Bucket.MINUTE.is_edge(moment) for moment in (since, until)):
        return None
    try:
        if since is None:
            if until is None:
                return [(Bucket.DAY, None, None)]
            last_day = Bucket.DAY.floor(until)
            return [(Bucket.DAY, None, last_day), *cover(last_day, until)]
        if until is None:
            first_day = Bucket.DAY.ceil(since)
            return [*cover(since, first_day), (Bucket.DAY, first_day, None)]
        return list(cover(since, until))
    except OverflowError:  # an edge in the last day that datetime holds
        return None
