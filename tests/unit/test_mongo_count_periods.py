"""Which collection holds each count document, and what retention reads from a name."""

import itertools
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from roadwatch.stores.mongo_count_periods import (
    Period,
    collection_name,
    parse_name,
    period_of,
    periods,
)
from roadwatch.time_buckets import Bucket

moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
)
buckets = st.sampled_from(list(Bucket))


def test_each_bucket_is_kept_a_period_larger() -> None:
    moment = datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC)

    assert period_of(Bucket.MINUTE, moment) == Period(
        Bucket.MINUTE, datetime(2026, 12, 31, 23, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    )
    assert period_of(Bucket.HOUR, moment) == Period(
        Bucket.HOUR, datetime(2026, 12, 31, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    )
    assert period_of(Bucket.DAY, moment) == Period(
        Bucket.DAY, datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)
    )
    assert collection_name("time_counts", period_of(Bucket.MINUTE, moment)) == (
        "time_counts_minutes_2026123123"
    )
    assert collection_name("time_counts", period_of(Bucket.DAY, moment)) == (
        "time_counts_days_202612"
    )


def test_a_moment_in_another_offset_goes_to_its_utc_period() -> None:
    moment = datetime(2026, 3, 1, 1, 30, tzinfo=UTC).astimezone(timezone(timedelta(hours=5)))

    assert period_of(Bucket.DAY, moment).start == datetime(2026, 3, 1, tzinfo=UTC)
    assert period_of(Bucket.MINUTE, moment).start == datetime(2026, 3, 1, 1, tzinfo=UTC)


@given(buckets, moments)
def test_a_bucket_lies_wholly_inside_its_period(bucket: Bucket, moment: datetime) -> None:
    period = period_of(bucket, moment)
    start = bucket.floor(moment)

    assert period.start <= start
    assert start + bucket.length <= period.end
    assert period_of(bucket, period.end).start == period.end


@given(buckets, moments)
def test_a_name_reads_back_as_its_period(bucket: Bucket, moment: datetime) -> None:
    period = period_of(bucket, moment)

    assert parse_name("time_counts", collection_name("time_counts", period)) == period
    # Another kind's collection is not this kind's.
    assert parse_name("alert_time_counts", collection_name("time_counts", period)) is None


def test_names_of_other_collections_are_no_period() -> None:
    for name in (
        "time_counts",
        "detections",
        "time_counts_minutes_",
        "time_counts_minutes_2026120",
        "time_counts_minutes_2026120725",
        "time_counts_weeks_202612",
        "time_counts_days_2026121",
        "time_counts_days_+02612",
        "time_counts_hours_20261207_x",
    ):
        assert parse_name("time_counts", name) is None, name


@given(buckets, moments, st.integers(min_value=0, max_value=5000))
def test_the_periods_of_a_range_cover_every_bucket_in_it(
    bucket: Bucket, first: datetime, buckets_long: int
) -> None:
    first = bucket.floor(first)
    end = first + bucket.length * buckets_long
    found = list(periods(bucket, first, end))

    if buckets_long == 0:
        assert found == []
        return
    # One stretch of periods, each once and in order, from the first bucket to the last.
    assert all(a.end == b.start for a, b in itertools.pairwise(found))
    assert found[0].start <= first
    assert end - bucket.length < found[-1].end
    assert found[-1].start < end
