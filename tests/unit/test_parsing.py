import hashlib
import json
import time
import unicodedata
import uuid
from datetime import UTC, datetime, timedelta

import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from roadwatch.detection_ids import DETECTION_NAMESPACE, derived_id
from roadwatch.domain import Detection, Source
from roadwatch.parsing import (
    MAX_MESSAGE_BYTES,
    MAX_TEXT_LENGTH,
    parse_detection,
)
from roadwatch.rejections import Reason, RejectedMessage

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
    assert detection.id == derived_id(SOURCE, KAFKA_MS)


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
    assert again.id == derived_id(SOURCE, KAFKA_MS)
    assert elsewhere.id != again.id
    assert again.id.version == 7


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


def test_a_derived_id_is_a_uuid7_of_the_time_then_a_hash_of_the_records_position() -> None:
    name = f"{SOURCE.topic}/{SOURCE.partition}/{SOURCE.offset}".encode()
    digest = hashlib.sha1(DETECTION_NAMESPACE.bytes + name, usedforsecurity=False).digest()

    made = derived_id(SOURCE, KAFKA_MS)

    assert (made.version, made.variant) == (7, uuid.RFC_4122)
    assert made.int >> 80 == KAFKA_MS
    # Every bit but the version's and the variant's is the hash's.
    unfixed = ~((0xF << 76) | (0x3 << 62)) & ((1 << 80) - 1)
    assert made.int & unfixed == int.from_bytes(digest[:10]) & unfixed


def test_a_derived_id_is_a_standard_uuid_wherever_it_goes() -> None:
    made = derived_id(SOURCE, KAFKA_MS)
    standard = uuid.UUID(int=made.int)

    assert isinstance(made, uuid.UUID)
    assert (made == standard, standard == made, hash(made)) == (True, True, hash(standard))
    assert made <= standard <= made
    assert (str(made), made.bytes, made.hex) == (str(standard), standard.bytes, standard.hex)
    assert msgspec.json.encode(made) == msgspec.json.encode(standard)


WINDOW_MS = st.integers(min_value=946_684_800_000, max_value=time.time_ns() // 1_000_000)


@given(
    WINDOW_MS,
    st.integers(min_value=1, max_value=10**9),
    st.integers(min_value=0, max_value=2**40),
    st.integers(min_value=0, max_value=2**40),
)
def test_derived_ids_sort_as_their_times_to_the_millisecond(
    at_ms: int, later_by_ms: int, offset: int, other_offset: int
) -> None:
    assert derived_id(Source("t", 0, offset), at_ms) < derived_id(
        Source("t", 5, other_offset), at_ms + later_by_ms
    )


@given(WINDOW_MS)
def test_a_records_time_is_its_milliseconds_exactly(at_ms: int) -> None:
    detection = parse_detection(orjson.dumps(VALID), source=SOURCE, timestamp_ms=at_ms)
    assert detection.timestamp == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=at_ms)


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


NOW_MS = time.time_ns() // 1_000_000


def test_invalid_utf8_in_the_producers_spelling_is_rejected_not_raised() -> None:
    raw = b'{"Year": 2011, "Make": "\xff", "Model": "Land Cruiser", "Category": "SUV"}'
    assert rejection(raw=raw).reason == Reason.NOT_JSON


@pytest.mark.parametrize("field", ["Make", "Model", "Category"])
@pytest.mark.parametrize("character", ["\x00", "\x1b", "\n", "\x9f"])
def test_a_control_character_in_any_text_is_an_invalid_field(field: str, character: str) -> None:
    found = rejection({**VALID, field: f"Ford{character}"})
    assert found.reason == Reason.INVALID_FIELD
    assert field.lower() in found.detail


def test_format_characters_are_removed_and_compatibility_forms_folded() -> None:
    detection = parse({**VALID, "Make": "ＴＯＹＯＴＡ", "Category": "S\u200bUV"})
    assert isinstance(detection, Detection)
    assert (detection.make, detection.category) == ("TOYOTA", "SUV")


def test_text_made_only_of_format_characters_is_empty() -> None:
    assert rejection({**VALID, "Make": "\u200b\u200d"}).reason == Reason.INVALID_FIELD


@pytest.mark.parametrize(
    "timestamp",
    [
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59-01:00",
        "1999-12-31T23:59:59.999Z",
        -1,
        0,
        2**63 - 1,
        -(2**63),
        # Named: an id must be the same in every run (xdist).
        pytest.param(NOW_MS + 31 * 86_400_000, id="a-month-ahead"),
    ],
)
def test_a_time_outside_this_century_or_beyond_a_month_ahead_is_rejected(timestamp: object) -> None:
    found = rejection({**VALID, "timestamp": timestamp})
    assert found.reason == Reason.INVALID_FIELD
    assert "timestamp" in found.detail


@pytest.mark.parametrize(
    "record_ms",
    [
        -1,
        0,
        946_684_799_999,
        pytest.param(NOW_MS + 31 * 86_400_000, id="a-month-ahead"),
        2**63 - 1,
    ],
)
@pytest.mark.parametrize("spelling", [VALID, {k.lower(): v for k, v in VALID.items()}])
def test_a_record_time_outside_the_window_is_rejected_on_either_way(
    record_ms: int, spelling: dict[str, object]
) -> None:
    with pytest.raises(RejectedMessage) as caught:
        parse_detection(orjson.dumps(spelling), source=SOURCE, timestamp_ms=record_ms)
    assert caught.value.reason == Reason.INVALID_FIELD
    assert "record's timestamp" in caught.value.detail


def test_the_first_moment_of_2000_and_29_days_ahead_are_parsed() -> None:
    # The indexer's own window (a day ahead by default) is narrower: see test_retention.
    for moment in ("2000-01-01T00:00:00Z", NOW_MS + 3_600_000, NOW_MS + 29 * 86_400_000):
        assert isinstance(parse({**VALID, "timestamp": moment}), Detection)


PRODUCER_MESSAGE = orjson.dumps(VALID)


@st.composite
def mutated_messages(draw: st.DrawFn) -> bytes:
    """The producer's message with random bytes replaced, inserted or cut away."""
    raw = bytearray(PRODUCER_MESSAGE)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        where = draw(st.integers(min_value=0, max_value=len(raw)))
        kind = draw(st.sampled_from(["replace", "insert", "truncate"]))
        if kind == "truncate":
            del raw[where:]
        elif kind == "insert":
            raw[where:where] = draw(st.binary(min_size=1, max_size=4))
        elif where < len(raw):
            raw[where] = draw(st.integers(min_value=0, max_value=255))
    return bytes(raw)


any_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=5,
)


@st.composite
def messages_with_random_values(draw: st.DrawFn) -> bytes:
    message: dict[str, object] = dict(VALID)
    for field in draw(st.sets(st.sampled_from([*VALID, "id", "timestamp"]), min_size=1)):
        message[field] = draw(any_json)
    return orjson.dumps(message)


def assert_storable(detection: Detection) -> None:
    """What both stores need of a detection: clean UTF-8 text, a time they and cursors hold."""
    for text in (detection.make, detection.model, detection.category):
        assert 0 < len(text) <= MAX_TEXT_LENGTH
        text.encode()
        assert all(unicodedata.category(c) not in {"Cc", "Cs", "Cf"} for c in text)
    assert datetime(2000, 1, 1, tzinfo=UTC) <= detection.timestamp
    assert detection.timestamp.tzinfo is not None
    assert -(2**15) < detection.year < 2**15


@given(mutated_messages() | messages_with_random_values())
def test_a_mutated_message_gives_a_storable_detection_or_a_rejection(raw: bytes) -> None:
    result = outcome(raw)
    assert_well_formed(result)
    if isinstance(result, Detection):
        assert_storable(result)
