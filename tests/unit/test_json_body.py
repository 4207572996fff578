import uuid
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from roadwatch.api.json_body import JsonBody
from roadwatch.api.schemas import DetectionPage, detection_json
from roadwatch.domain import Detection, Source

detections = st.builds(
    Detection,
    id=st.uuids(),
    timestamp=st.datetimes(timezones=st.just(UTC)),
    year=st.integers(1886, 2200),
    make=st.text(),
    model=st.text(),
    category=st.text(),
    source=st.just(Source("intellisite.detections", 0, 0)),
)


@given(
    st.lists(detections, max_size=5),
    st.integers(0, 10**9),
    st.booleans(),
    st.none() | st.text(max_size=20),
)
def test_a_page_written_directly_is_byte_for_byte_the_page_the_response_model_writes(
    items: list[Detection], total: int, capped: bool, cursor: str | None
) -> None:
    page = {
        "items": [detection_json(item) for item in items],
        "total": total,
        "total_capped": capped,
        "skip": 0,
        "limit": 50,
        "next_cursor": cursor,
    }
    modelled = DetectionPage.model_validate(page).model_dump_json().encode()
    assert JsonBody(page).body == modelled


def test_a_utc_time_ends_in_z_as_pydantic_writes_it() -> None:
    moment = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    detection = Detection(
        uuid.uuid4(), moment, 2011, "Toyota", "Land Cruiser", "SUV", Source("t", 0, 0)
    )
    assert b'"2024-05-01T12:00:00.123000Z"' in JsonBody(detection_json(detection)).body
