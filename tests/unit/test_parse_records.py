"""A batch of records parses to what the general way makes of each record, in order, and never
raises: the short way taken for the producer's own messages changes nothing."""

import json
import time

from hypothesis import given
from hypothesis import strategies as st

from roadwatch.domain import Source
from roadwatch.kafka.record import Record
from roadwatch.parsing import ParseLimits, _parse_generally, parse_records
from roadwatch.rejections import Reason, RejectedMessage

NOW_MS = time.time_ns() // 1_000_000
VALID = {"Year": 2011, "Make": "Toyota", "Model": "Land Cruiser", "Category": "SUV"}
texts = st.text(max_size=40) | st.sampled_from(["Toyota", " SUV ", "Ｆｏｒｄ", "\u200b", "a\x00"])
messages = st.fixed_dictionaries(
    {"Year": st.integers(1800, 2100) | st.none(), "Make": texts, "Model": texts, "Category": texts}
).map(lambda message: json.dumps(message).encode())
values = (
    st.none()
    | st.binary(max_size=200)
    | messages
    | st.just(json.dumps(VALID).encode())
    | st.just(json.dumps({**VALID, "Model": "x" * 200}).encode())
)
# The window's edges and beyond it: 2000-01-01, 30 days ahead.
times = st.sampled_from(
    [946_684_799_999, 946_684_800_000, NOW_MS, NOW_MS + 30 * 86_400_000 + 60_000]
) | st.integers(0, 2**42)
limits = st.builds(
    ParseLimits,
    max_bytes=st.sampled_from([16, 100, 64 * 1024]),
    max_text_length=st.integers(1, 128),
)


def generally(record: Record, limits: ParseLimits) -> object:
    source = Source(record.topic, record.partition, record.offset)
    try:
        return _parse_generally(record.value, source, record.timestamp, limits)
    except RejectedMessage as rejected:
        return (rejected.reason, rejected.detail)


def as_compared(outcome: object) -> object:
    if isinstance(outcome, RejectedMessage):
        return (outcome.reason, outcome.detail)
    return outcome


@given(st.lists(st.tuples(values, times), max_size=20), limits)
def test_a_batch_parses_as_the_general_way_parses_each_record(
    sent: list[tuple[bytes | None, int]], limits: ParseLimits
) -> None:
    records = [
        Record("t", 1, offset, at_ms, None, value, ()) for offset, (value, at_ms) in enumerate(sent)
    ]
    assert [as_compared(o) for o in parse_records(records, limits=limits)] == [
        generally(record, limits) for record in records
    ]


def test_a_fault_the_parser_did_not_foresee_rejects_its_record_alone() -> None:
    valid = json.dumps(VALID).encode()
    records = [
        Record("t", 0, 0, NOW_MS, None, valid, ()),
        # A record time of the wrong type is a fault the parser does not foresee.
        Record("t", 0, 1, "soon", None, valid, ()),  # type: ignore[arg-type]
        Record("t", 0, 2, NOW_MS, None, b"[]", ()),
    ]
    first, unforeseen, ordinary = parse_records(records)
    assert not isinstance(first, RejectedMessage)
    assert first.source == Source("t", 0, 0)
    assert isinstance(unforeseen, RejectedMessage)
    assert unforeseen.reason == Reason.UNDECODABLE
    assert isinstance(ordinary, RejectedMessage)
    assert ordinary.reason == Reason.NOT_AN_OBJECT
