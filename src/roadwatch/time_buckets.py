"""Buckets of time, all in UTC: a minute, an hour, a day, as the counts over time keep them."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum


class Bucket(StrEnum):
    # Finest first. The names are PostgreSQL's date_trunc fields too.
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"

    @property
    def length(self) -> timedelta:
        return _LENGTHS[self]

    def floor(self, moment: datetime) -> datetime:
        """The start of the bucket that holds `moment`."""
        moment = moment.astimezone(UTC)
        if self is Bucket.DAY:
            return datetime.combine(moment.date(), time(), UTC)
        if self is Bucket.HOUR:
            return moment.replace(minute=0, second=0, microsecond=0)
        return moment.replace(second=0, microsecond=0)

    def ceil(self, moment: datetime) -> datetime:
        """The start of the first bucket that begins at or after `moment`."""
        start = self.floor(moment)
        return start if start == moment else start + self.length

    def is_edge(self, moment: datetime) -> bool:
        return self.floor(moment) == moment

    def starts(self, since: datetime, until: datetime) -> Iterator[datetime]:
        """The start of every bucket that overlaps [since, until)."""
        start = self.floor(since)
        while start < until:
            yield start
            start += self.length


_LENGTHS = {
    Bucket.MINUTE: timedelta(minutes=1),
    Bucket.HOUR: timedelta(hours=1),
    Bucket.DAY: timedelta(days=1),
}
COARSEST_FIRST = (Bucket.DAY, Bucket.HOUR, Bucket.MINUTE)


def cover(since: datetime, until: datetime) -> list[tuple[Bucket, datetime, datetime]]:
    """[since, until), both on minute edges, as the fewest whole buckets: ranges of days in
    the middle, of hours beside them, of minutes at the ends. Each range is (bucket, first
    start, end), the end excluded."""
    if not (Bucket.MINUTE.is_edge(since) and Bucket.MINUTE.is_edge(until)):
        raise ValueError("a window to count must start and end on whole minutes")
    return _cover(since, until, COARSEST_FIRST)


def _cover(
    since: datetime, until: datetime, sizes: tuple[Bucket, ...]
) -> list[tuple[Bucket, datetime, datetime]]:
    if since >= until or not sizes:
        return []
    bucket, finer = sizes[0], sizes[1:]
    first, end = bucket.ceil(since), bucket.floor(until)
    if first >= end:
        return _cover(since, until, finer)
    return [*_cover(since, first, finer), (bucket, first, end), *_cover(end, until, finer)]


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)
