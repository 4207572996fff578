import json
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from roadwatch.domain import Detection, Source
from roadwatch.parsing import (
    DETECTION_NAMESPACE,
    MAX_MESSAGE_BYTES,
    MAX_TEXT_LENGTH,
    Reason,
    RejectedMessage,
    derived_id,
    parse_detection,
)

SOURCE = Source("intellisite.detections", 2, 41)
KAFKA_MS = 1_714_564_800_123
VALID = {"Year": 2011, "Make": "Toyota", "Model": "Land Cruiser", "Category": "SUV"}


def parse(value: object, *, raw: bytes | None = None) -> object:
    # The standard library's encoder writes integers of any size, as a camera's might.
    encoded = raw if raw is not None else json.dumps(value).encode()
    return parse_detection(encoded, source=SOURCE, timestamp_ms=KAFKA_MS)


def rejection(value: object = None, *, raw: bytes | None = None) -> RejectedMessage:
    with pytest.raises(RejectedMessage) as caught:
        parse(value, raw=raw)
    return caught.value


def test_the_challenges_message_becomes_a_detection() -> None:
    detection = parse_detection(orjson.dumps(VALID), source=SOURCE, timestamp_ms=KAFKA_MS)

    assert (detection.year, detection.make, detection.model, detection.category) == (
        2011,
        "Toyota",
        "Land Cruiser",
        "SUV",
    )
    assert detection.timestamp == datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert detection.source == SOURCE
    assert detection.id == derived_id(SOURCE)


def test_keys_in_any_case_and_extra_fields_are_accepted() -> None:
    detection = parse_detection(
        orjson.dumps(
            {
                "YEAR": 2011,
                "make": " Toyota ",
                "MoDeL": "Land Cruiser",
                "category": "SUV",
                "camera": "north-7",
            }
        ),
        source=SOURCE,
        timestamp_ms=KAFKA_MS,
    )
    assert (detection.make, detection.model) == ("Toyota", "Land Cruiser")


def test_the_same_record_replayed_gets_the_same_id_and_another_record_another() -> None:
    again = parse_detection(orjson.dumps(VALID), source=SOURCE, timestamp_ms=KAFKA_MS)
    elsewhere = parse_detection(
        orjson.dumps(VALID), source=Source(SOURCE.topic, 2, 42), timestamp_ms=KAFKA_MS
    )
    assert again.id == derived_id(SOURCE)
    assert elsewhere.id != again.id
    assert again.id.version == 5


def test_a_message_carrying_its_own_id_and_time_keeps_them() -> None:
    own = uuid.uuid4()
    detection = parse_detection(
        orjson.dumps({**VALID, "id": str(own), "timestamp": "2023-01-02T03:04:05.678901+02:00"}),
        source=SOURCE,
        timestamp_ms=KAFKA_MS,
    )
    assert detection.id == own
    assert detection.timestamp == datetime(2023, 1, 2, 1, 4, 5, 678000, tzinfo=UTC)


def test_an_epoch_millisecond_timestamp_is_accepted() -> None:
    detection = parse_detection(
        orjson.dumps({**VALID, "timestamp": 1_600_000_000_001}), source=SOURCE, timestamp_ms=0
    )
    assert detection.timestamp == datetime(2020, 9, 13, 12, 26, 40, 1000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json at all", Reason.NOT_JSON),
        (b"", Reason.NOT_JSON),
        (b'[2011, "Toyota"]', Reason.NOT_AN_OBJECT),
        (b'"a string"', Reason.NOT_AN_OBJECT),
        (b"\xff\xfe", Reason.NOT_JSON),
        (b"{" + b" " * MAX_MESSAGE_BYTES + b"}", Reason.TOO_LARGE),
    ],
)
def test_what_is_not_a_json_object_is_rejected(raw: bytes, reason: Reason) -> None:
    assert rejection(raw=raw).reason == reason


def test_a_message_without_a_value_is_rejected() -> None:
    with pytest.raises(RejectedMessage) as caught:
        parse_detection(None, source=SOURCE, timestamp_ms=KAFKA_MS)
    assert caught.value.reason == Reason.NOT_JSON


@pytest.mark.parametrize("field", ["Year", "Make", "Model", "Category"])
def test_each_missing_field_is_named(field: str) -> None:
    message = {k: v for k, v in VALID.items() if k != field}
    found = rejection(message)
    assert found.reason == Reason.MISSING_FIELD
    assert field.lower() in found.detail


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"Year": "2011"}, "year"),
        ({"Year": 2011.5}, "year"),
        ({"Year": True}, "year"),
        ({"Year": 1700}, "year"),
        ({"Year": 9999}, "year"),
        ({"Make": 7}, "make"),
        ({"Make": "   "}, "make"),
        ({"Model": "x" * 129}, "model"),
        ({"Category": ["SUV"]}, "category"),
        ({"id": "not-a-uuid"}, "id"),
        ({"id": 12}, "id"),
        ({"timestamp": "yesterday"}, "timestamp"),
        ({"timestamp": "2023-01-02T03:04:05"}, "timestamp"),
        ({"timestamp": 10**20}, "timestamp"),
    ],
)
def test_an_ill_typed_field_is_rejected_naming_it(change: dict[str, object], named: str) -> None:
    found = rejection({**VALID, **change})
    assert found.reason == Reason.INVALID_FIELD
    assert named in found.detail


def test_a_rejection_detail_never_carries_a_long_value() -> None:
    found = rejection({**VALID, "id": "x" * 5000})
    assert len(found.detail) < 120


def outcome(raw: bytes) -> Detection | RejectedMessage:
    try:
        return parse_detection(raw, source=SOURCE, timestamp_ms=KAFKA_MS)
    except RejectedMessage as rejected:
        return rejected


def assert_well_formed(result: Detection | RejectedMessage) -> None:
    """A detection holds clean values; a rejection names a known reason and says why."""
    if isinstance(result, RejectedMessage):
        assert result.reason in set(Reason)
        assert result.detail
    else:
        assert isinstance(result.year, int)
        for text in (result.make, result.model, result.category):
            assert text == text.strip()
            assert 0 < len(text) <= MAX_TEXT_LENGTH


@given(st.binary(max_size=300))
def test_any_bytes_give_a_detection_or_a_rejection_and_nothing_else(raw: bytes) -> None:
    assert_well_formed(outcome(raw))


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=10,
)
FIELD_NAMES = ["Year", "make", "MODEL", "category", "id", "timestamp", "other"]


@given(st.dictionaries(st.sampled_from(FIELD_NAMES), json_values))
def test_any_json_object_gives_a_detection_or_a_rejection(message: dict[str, object]) -> None:
    result = outcome(json.dumps(message).encode())
    assert_well_formed(result)
    if isinstance(result, RejectedMessage):
        assert result.reason in {Reason.MISSING_FIELD, Reason.INVALID_FIELD}


def test_a_derived_id_is_the_standard_uuid5_of_the_records_position() -> None:
    assert derived_id(SOURCE) == uuid.uuid5(
        DETECTION_NAMESPACE, f"{SOURCE.topic}/{SOURCE.partition}/{SOURCE.offset}"
    )


plausible_values = {
    "Year": st.integers(min_value=1800, max_value=2100) | json_values,
    "Make": st.text(max_size=140) | json_values,
    "Model": st.text(max_size=140) | json_values,
    "Category": st.text(max_size=140) | json_values,
}


@given(st.fixed_dictionaries(plausible_values))
def test_the_producers_spelling_parses_as_any_other_spelling_would(
    message: dict[str, object],
) -> None:
    # The exact spelling takes a faster way; lower-case keys take the general one.
    exact = outcome(json.dumps(message).encode())
    general = outcome(json.dumps({key.lower(): value for key, value in message.items()}).encode())
    if isinstance(exact, RejectedMessage) and isinstance(general, RejectedMessage):
        assert (exact.reason, exact.detail) == (general.reason, general.detail)
    else:
        assert exact == general
