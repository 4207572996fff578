"""Times in the API: ISO 8601 in, UTC inside, and the windows that counts are read over."""

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from roadwatch.errors import Invalid
from roadwatch.parsing import EARLIEST, LATEST_AHEAD
from roadwatch.time_buckets import Bucket

# A timeline longer than this is refused: a day by minute, two months by hour.
MAX_BUCKETS = 1440
DEFAULT_SPAN = {
    Bucket.MINUTE: timedelta(hours=1),
    Bucket.HOUR: timedelta(days=1),
    Bucket.DAY: timedelta(days=30),
}


class InvalidWindow(Invalid):
    def __str__(self) -> str:
        return str(self.args[0])


def _iso_8601(value: object) -> object:
    # pydantic would take a bare number as seconds since the epoch; the schema says date-time.
    if isinstance(value, str) and not re.match(r"^\d{4}-\d{2}-\d{2}", value):
        raise ValueError("must be an ISO 8601 date-time, such as 2024-05-01T12:00:00Z")
    return value


def _in_utc(moment: datetime) -> datetime:
    """The moment in UTC (a time without an offset is taken as UTC); one that has no UTC
    time, such as 0001-01-01T00:00:00+01:00, is invalid."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("lies outside the years 1 to 9999 in UTC") from None


Moment = Annotated[datetime, BeforeValidator(_iso_8601), AfterValidator(_in_utc)]


def counted_window(
    since: datetime | None, until: datetime | None, *, now: datetime
) -> tuple[datetime, datetime]:
    """The window of a count, which must start and end on whole minutes, within the times a
    stored detection can have (2000-01-01 to 30 days from now): an open end reaches that far."""
    for name, moment in (("since", since), ("until", until)):
        if moment is not None and not Bucket.MINUTE.is_edge(moment):
            raise InvalidWindow(
                f"{name} must fall on a whole minute, as counts are kept per minute, such as "
                f"{Bucket.MINUTE.floor(moment):%Y-%m-%dT%H:%M:00Z}"
            )
    _in_order(since, until)
    return _clamped(since or EARLIEST, now=now), _clamped(until or _latest(now), now=now)


def timeline_window(
    bucket: Bucket, since: datetime | None, until: datetime | None, *, now: datetime
) -> tuple[datetime, datetime]:
    """The window of a timeline, within the times a stored detection can have: until now,
    and since a span back that suits the bucket, unless told; at most MAX_BUCKETS buckets."""
    _in_order(since, until)
    end = _clamped(until or now, now=now)
    first = _clamped(since, now=now) if since else max(end - DEFAULT_SPAN[bucket], EARLIEST)
    buckets = -((bucket.floor(first) - end) // bucket.length)
    if buckets > MAX_BUCKETS:
        raise InvalidWindow(
            f"{buckets:,} {bucket.value} buckets, more than the {MAX_BUCKETS:,} allowed: "
            "choose a larger bucket or a shorter window"
        )
    return first, end


def _in_order(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise InvalidWindow("since must come before until")


def _latest(now: datetime) -> datetime:
    return Bucket.DAY.ceil(now + LATEST_AHEAD)


def _clamped(moment: datetime, *, now: datetime) -> datetime:
    """Within the times a stored detection can have: no arithmetic on it can overflow."""
    return min(max(moment, EARLIEST), _latest(now))
