from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roadwatch.stores.postgres_time_counts import Span, spans_of
from roadwatch.time_buckets import Bucket, cover

START = datetime(2024, 1, 1, tzinfo=UTC)
minutes = st.integers(min_value=0, max_value=60 * 24 * 400)


@given(minutes, minutes)
def test_a_window_is_covered_by_whole_buckets_exactly_once(a: int, b: int) -> None:
    since = START + timedelta(minutes=min(a, b))
    until = START + timedelta(minutes=max(a, b))

    ranges = cover(since, until)

    position = since
    for bucket, first, end in sorted(ranges, key=lambda r: r[1]):
        assert first == position
        assert bucket.is_edge(first)
        assert bucket.is_edge(end)
        assert first < end
        position = end
    assert position == until
    # Days in the middle, hours and minutes only at the two ends.
    assert len(ranges) <= 5


def test_the_fewest_buckets_are_used() -> None:
    since = datetime(2024, 5, 1, 22, 30, tzinfo=UTC)
    until = datetime(2024, 5, 4, 1, 15, tzinfo=UTC)

    assert cover(since, until) == [
        (Bucket.MINUTE, since, datetime(2024, 5, 1, 23, tzinfo=UTC)),
        (Bucket.HOUR, datetime(2024, 5, 1, 23, tzinfo=UTC), datetime(2024, 5, 2, tzinfo=UTC)),
        (Bucket.DAY, datetime(2024, 5, 2, tzinfo=UTC), datetime(2024, 5, 4, tzinfo=UTC)),
        (Bucket.HOUR, datetime(2024, 5, 4, tzinfo=UTC), datetime(2024, 5, 4, 1, tzinfo=UTC)),
        (Bucket.MINUTE, datetime(2024, 5, 4, 1, tzinfo=UTC), until),
    ]
    assert cover(until, since) == []


def test_a_window_must_start_and_end_on_whole_minutes() -> None:
    with pytest.raises(ValueError, match="whole minutes"):
        cover(START + timedelta(seconds=30), START + timedelta(hours=1))


def test_buckets_are_utc_whatever_the_offset_of_the_moment() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    moment = datetime(2024, 5, 1, 3, 10, 20, tzinfo=india)  # 2024-04-30T21:40:20Z

    assert Bucket.DAY.floor(moment) == datetime(2024, 4, 30, tzinfo=UTC)
    assert Bucket.HOUR.floor(moment) == datetime(2024, 4, 30, 21, tzinfo=UTC)
    assert Bucket.MINUTE.ceil(moment) == datetime(2024, 4, 30, 21, 41, tzinfo=UTC)
    assert list(Bucket.HOUR.starts(moment, moment + timedelta(hours=1))) == [
        datetime(2024, 4, 30, 21, tzinfo=UTC),
        datetime(2024, 4, 30, 22, tzinfo=UTC),
    ]


def test_the_spans_a_count_over_time_reads_cover_its_window_and_no_more() -> None:
    # The minutes each span covers, with an open end standing for every day beyond.
    def minutes(spans: list[Span], lowest: datetime, highest: datetime) -> set[datetime]:
        covered: set[datetime] = set()
        for bucket, first, end in spans:
            start = first or lowest
            while start < (end or highest):
                covered.update(Bucket.MINUTE.starts(start, start + bucket.length))
                start += bucket.length
        return covered

    since = datetime(2026, 3, 1, 10, 7, tzinfo=UTC)
    until = datetime(2026, 3, 4, 2, 0, tzinfo=UTC)
    lowest, highest = datetime(2026, 2, 27, tzinfo=UTC), datetime(2026, 3, 7, tzinfo=UTC)
    for window_since, window_until in ((since, until), (None, until), (since, None), (None, None)):
        spans = spans_of(window_since, window_until)
        assert spans is not None
        expected = set(Bucket.MINUTE.starts(window_since or lowest, window_until or highest))
        assert minutes(spans, lowest, highest) == expected, (window_since, window_until)
    # Off a whole minute, or at the very end of datetime's range, the counts cannot answer.
    assert spans_of(since + timedelta(seconds=1), until) is None
    assert spans_of(since, until - timedelta(microseconds=1)) is None
    assert spans_of(datetime(9999, 12, 31, 23, 59, tzinfo=UTC), None) is None
