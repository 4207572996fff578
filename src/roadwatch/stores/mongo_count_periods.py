"""Which collection holds a count document: one per period, named for it.

A minute's documents go in the collection of their hour, an hour's in their day's, a day's
in their month's: `time_counts_minutes_2026120715`, `time_counts_hours_20261207`,
`time_counts_days_202612`. A name says which bucket its documents count and when its period
starts and ends, so retention can tell from the names alone which collections to drop.
"""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from roadwatch.time_buckets import Bucket

# Per bucket: the word in its collections' names, and the format of its period's start.
_NAMING = {
    Bucket.MINUTE: ("minutes", "%Y%m%d%H"),
    Bucket.HOUR: ("hours", "%Y%m%d"),
    Bucket.DAY: ("days", "%Y%m"),
}
_BUCKET_OF = {word: bucket for bucket, (word, _format) in _NAMING.items()}
# A minute's documents are held in its hour's collection, an hour's in its day's; a day's in
# its month's, which is no bucket.
_HELD_IN = {Bucket.MINUTE: Bucket.HOUR, Bucket.HOUR: Bucket.DAY}


class Period(NamedTuple):
    """The collection of one period's documents of one bucket."""

    bucket: Bucket
    start: datetime
    end: datetime


def period_of(bucket: Bucket, moment: datetime) -> Period:
    """The period whose collection holds the bucket's document for `moment`."""
    if (larger := _HELD_IN.get(bucket)) is not None:
        start = larger.floor(moment)
        return Period(bucket, start, start + larger.length)
    start = Bucket.DAY.floor(moment).replace(day=1)
    following = (start + timedelta(days=32)).replace(day=1)
    return Period(bucket, start, following)


def periods(bucket: Bucket, first: datetime, end: datetime) -> Iterator[Period]:
    """Every period of `bucket` whose documents may start in [first, end)."""
    if first >= end:
        return
    period = period_of(bucket, first)
    while period.start < end:
        yield period
        period = period_of(bucket, period.end)


def collection_name(kind: str, period: Period) -> str:
    word, start_format = _NAMING[period.bucket]
    return f"{kind}_{word}_{period.start.strftime(start_format)}"


def parse_name(kind: str, name: str) -> Period | None:
    """The period a collection of `kind` holds, or None for any other name."""
    word, _, stamp = name.removeprefix(f"{kind}_").partition("_")
    if not name.startswith(f"{kind}_") or word not in _BUCKET_OF:
        return None
    bucket = _BUCKET_OF[word]
    try:
        start = datetime.strptime(stamp, _NAMING[bucket][1]).replace(tzinfo=UTC)
    except ValueError:
        return None
    period = period_of(bucket, start)
    # Only the name this module would give: nothing that merely parses alike.
    return period if collection_name(kind, period) == name else None
