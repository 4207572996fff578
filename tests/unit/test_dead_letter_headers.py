from roadwatch.indexer.dead_letter import dead_letter_headers
from roadwatch.rejections import Reason, RejectedMessage
from tests.helpers.records import consumer_record


def test_incoming_headers_named_like_roadwatchs_cannot_pass_for_them() -> None:
    forged = [
        ("roadwatch.reason", b"not_json"),
        ("RoadWatch.Source.Topic", b"elsewhere"),
        ("camera", b"north-7"),
    ]
    record = consumer_record(b"{}", topic="t", partition=2, offset=9, headers=forged)

    headers = dead_letter_headers(
        record, RejectedMessage(Reason.MISSING_FIELD, "'year' is missing")
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
