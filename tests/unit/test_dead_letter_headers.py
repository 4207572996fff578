from roadwatch.indexer.dead_letter import dead_letter
from roadwatch.kafka.letters import MAX_LETTER_BYTES
from roadwatch.rejections import Reason, RejectedMessage
from tests.helpers.records import consumer_record


def test_incoming_headers_named_like_roadwatchs_cannot_pass_for_them() -> None:
    forged = [
        ("roadwatch.reason", b"not_json"),
        ("RoadWatch.Source.Topic", b"elsewhere"),
        ("camera", b"north-7"),
    ]
    record = consumer_record(b"{}", topic="t", partition=2, offset=9, headers=forged)

    headers = dead_letter(
        record, RejectedMessage(Reason.MISSING_FIELD, "'year' is missing")
    ).headers

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
    letter = dead_letter(consumer_record(None, key=None), rejection)
    assert (letter.key, letter.value) == (None, b"")
    assert ("roadwatch.value", b"null") in letter.headers


def test_a_record_too_large_for_a_letter_keeps_roadwatchs_headers_and_what_fits() -> None:
    big = [(f"h{i}", b"x" * 1000) for i in range(500)]
    record = consumer_record(b"v" * 1_000_000, key=b"k", headers=big, offset=7)
    letter = dead_letter(record, RejectedMessage(Reason.TOO_LARGE, "too large"))
    names = dict(letter.headers)
    assert names["roadwatch.source.offset"] == b"7"
    assert names["roadwatch.dropped_headers"] == b"500"
    assert names["roadwatch.value_length"] == b"1000000"
    size = len(letter.value or b"") + sum(len(n) + len(v or b"") for n, v in letter.headers)
    assert size <= MAX_LETTER_BYTES
