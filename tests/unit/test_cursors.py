import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from roadwatch.api.cursors import InvalidCursor, decode_cursor, encode_cursor
from roadwatch.stores.detection_store import Position

moments = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)
).map(lambda moment: moment.replace(microsecond=moment.microsecond // 1000 * 1000))


@given(moments, st.uuids())
def test_every_position_to_the_millisecond_comes_back_from_its_cursor(
    moment: datetime, identifier: uuid.UUID
) -> None:
    position = Position(moment, identifier)
    assert decode_cursor(encode_cursor(position)) == position


@pytest.mark.parametrize("moment", [datetime.min, datetime.max])
def test_the_ends_of_time_as_the_database_driver_returns_them_still_encode(
    moment: datetime,
) -> None:
    cursor = encode_cursor(Position(moment, uuid.uuid4()))
    assert decode_cursor(cursor).timestamp - moment.replace(tzinfo=UTC) < timedelta(milliseconds=1)


@pytest.mark.parametrize(
    "cursor",
    ["", "not a cursor", "MTIzOm5vdC1hLXV1aWQ", "OTk5OTk5OTk5OTk5OTk5OTk5Ojk", "%%%%", "YTpi"],
)
def test_anything_else_is_an_invalid_cursor(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)
