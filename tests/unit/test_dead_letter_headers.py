from hypothesis import given
from hypothesis import strategies as st

from roadwatch.indexer.dead_letter import dead_letter
from roadwatch.kafka.letters import MAX_LETTER_BYTES, SMALLEST_LETTER
from roadwatch.rejections import Reason, RejectedMessage
from tests.helpers.records import consumer_record


def test_incoming_headers_named_like_roadwatchs_cannot_pass_for_them() -> None:
    forged = [
        ("roadwatch.reason", b"not_json"),
        ("RoadWatch.Source.Topic", b"elsewhere"),
        ("camera", b"north-7"),
    ]
    record = consumer_record(b"{}", topic="t", partition=2, offset=9, headers=forged)

    headers = (
        dead_letter(record, RejectedMessage(Reason.MISSING_FIELD, "'year' is missing"))
        .fitted()
        .headers
    )

    own = [(name, value) for name, value in headers if name.lower().startswith("roadwatch.")]
    assert own == [
        ("roadwatch.reason", b"missing_field"),
        ("roadwatch.detail", b"'year' is missing"),
        ("roadwatch.source.topic", b"t"),
        ("roadwatch.source.partition", b"2"),
        ("roadwatch.source.offset", b"9"),
    ]
    assert ("original.roadwatch.reason", b"not_json") in headers
    assert ("original.RoadWatch.Source.Topic", b"elsewhere") in headers
    assert ("camera", b"north-7") in headers


def test_a_record_with_neither_key_nor_value_has_a_letter_kafka_takes() -> None:
    rejection = RejectedMessage(Reason.NOT_JSON, "no value")
    letter = dead_letter(consumer_record(None, key=None), rejection).fitted()
    assert (letter.key, letter.value) == (None, b"")
    assert ("roadwatch.value", b"null") in letter.headers


def test_a_record_too_large_for_a_letter_keeps_roadwatchs_headers_and_what_fits() -> None:
    big = [(f"h{i}", b"x" * 1000) for i in range(500)]
    record = consumer_record(b"v" * 1_000_000, key=b"k", headers=big, offset=7)
    letter = dead_letter(record, RejectedMessage(Reason.TOO_LARGE, "too large")).fitted()
    names = dict(letter.headers)
    assert names["roadwatch.source.offset"] == b"7"
    assert names["roadwatch.dropped_headers"] == b"500"
    assert names["roadwatch.value_length"] == b"1000000"
    size = len(letter.value or b"") + sum(len(n) + len(v or b"") for n, v in letter.headers)
    assert size <= MAX_LETTER_BYTES


@given(
    key=st.none() | st.binary(max_size=5000),
    value=st.none() | st.binary(max_size=5000),
    original=st.lists(st.tuples(st.text(max_size=50), st.binary(max_size=500)), max_size=20),
    limit=st.integers(SMALLEST_LETTER, 6000),
)
def test_a_letter_fits_any_size_a_topic_takes_and_says_what_it_cut(
    key: bytes | None, value: bytes | None, original: list[tuple[str, bytes]], limit: int
) -> None:
    record = consumer_record(value, key=key, headers=original, offset=3)
    letter = dead_letter(record, RejectedMessage(Reason.NOT_JSON, "d" * 1000)).fitted(limit)
    size = len(letter.key or b"") + len(letter.value or b"")
    assert size + sum(len(n.encode()) + len(v or b"") for n, v in letter.headers) <= limit
    names = dict(letter.headers)
    assert names["roadwatch.source.offset"] == b"3"
    if key is not None and letter.key != key:
        assert names["roadwatch.key_length"] == str(len(key)).encode()
    if value is not None and letter.value != value:
        assert names["roadwatch.value_length"] == str(len(value)).encode()
