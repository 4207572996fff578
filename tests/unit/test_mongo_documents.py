"""A stored document is read as the detection or alert roadwatch wrote, or refused as
foreign (ForeignDocument): never another error, whatever it holds. An alert's rules are read
entry by entry, in either store."""

import os
import string
import uuid
from datetime import UTC, datetime

import bson
import orjson
import pytest
from bson import Binary, ObjectId
from bson.datetime_ms import DatetimeMS
from bson.raw_bson import RawBSONDocument
from hypothesis import given, settings
from hypothesis import strategies as st

from roadwatch.domain import Alert, RuleRef
from roadwatch.stores.mongo_documents import (
    ALERT_MAX_BYTES,
    DETECTION_MAX_BYTES,
    alert_document,
    alert_of,
    detection_document,
    detection_of,
)
from roadwatch.stores.mongo_reading import ForeignDocument, decoded
from roadwatch.stores.rule_refs import rules_in, rules_in_json
from tests.helpers.factories import make_detection

# As for the Kafka record parser: 25 times the fuzz suite's examples, for they are cheap.
EXAMPLES = 25 * int(os.environ.get("ROADWATCH_FUZZ_EXAMPLES", "12"))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(codec="utf-8"), max_size=12),
    st.binary(max_size=8),
    st.datetimes(timezones=st.just(UTC)),
    st.builds(DatetimeMS, st.integers(-(2**62), 2**62)),
    st.builds(ObjectId),
)
KEYS = st.text(string.ascii_letters + "_", min_size=1, max_size=8)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=8,
)
DETECTION_FIELDS = ["_id", "timestamp", "year", "make", "model", "category", "source"]


def _read_back(document: dict[str, object], max_bytes: int) -> dict[str, object]:
    return decoded(RawBSONDocument(bson.encode(document)), max_bytes=max_bytes)


def test_a_detection_and_an_alert_read_back_as_written() -> None:
    detection = make_detection()
    alert = Alert(detection, (RuleRef(uuid.uuid4(), "SUVs"), RuleRef(uuid.uuid4(), "Land")))
    assert detection_of(_read_back(detection_document(detection), DETECTION_MAX_BYTES)) == (
        detection
    )
    assert alert_of(_read_back(alert_document(alert), ALERT_MAX_BYTES)) == alert


@settings(max_examples=EXAMPLES)
@given(
    field=st.sampled_from([*DETECTION_FIELDS, "source.topic", "source.partition"]),
    value=VALUES | st.just(KeyError),
)
def test_any_field_of_any_value_reads_as_a_detection_or_is_refused_as_foreign(
    field: str, value: object
) -> None:
    document = detection_document(make_detection())
    holder, _, name = field.rpartition(".")
    into = document[holder] if holder else document
    if value is KeyError:
        del into[name]
    else:
        into[name] = value
    try:
        detection = detection_of(_read_back(document, DETECTION_MAX_BYTES))
    except ForeignDocument:
        return
    # Taken: only for a value of the very type roadwatch writes there.
    assert isinstance(detection.timestamp, datetime)
    assert all(isinstance(text, str) for text in (detection.make, detection.model))
    assert type(detection.year) is int
    assert type(detection.source.partition) is int


@settings(max_examples=EXAMPLES)
@given(rules=VALUES)
def test_an_alert_with_any_rules_reads_naming_those_that_are_rules(rules: object) -> None:
    document = alert_document(Alert(make_detection(), (RuleRef(uuid.uuid4(), "any"),)))
    document["rules"] = rules
    alert = alert_of(_read_back(document, ALERT_MAX_BYTES))
    assert all(isinstance(rule, RuleRef) and isinstance(rule.name, str) for rule in alert.rules)
    assert len(alert.rules) <= (len(rules) if isinstance(rules, list) else 0)


def test_an_alert_names_the_rules_written_as_roadwatch_writes_them_in_their_order() -> None:
    kept = [RuleRef(uuid.uuid4(), "first"), RuleRef(uuid.uuid4(), "second")]
    entries = [
        {"id": str(kept[0].id), "name": "first"},
        {"id": 5, "name": "a number for an id"},
        "text",
        {"id": str(uuid.uuid4())},
        {"id": str(kept[1].id), "name": "second", "colour": "an extra field"},
    ]
    for rules in (entries, orjson.dumps(entries).decode()):
        if isinstance(rules, str):
            assert rules_in_json(rules) == tuple(kept)
        else:
            assert rules_in(rules) == tuple(kept)
    assert rules_in_json("not json") == ()
    assert rules_in_json('{"id": 1}') == ()


@pytest.mark.parametrize(
    ("document", "why"),
    [
        ({"timestamp": "2024-05-01T12:00:00Z"}, "timestamp is not a date"),
        ({"timestamp": DatetimeMS(2**62)}, "timestamp is not a date"),
        ({"_id": Binary.from_uuid(uuid.uuid4())}, "_id not text"),
        ({"_id": "not a uuid"}, "Invalid UUID"),
        ({"year": 2011.0}, "Expected `int`, got `float`"),
        ({"year": True}, "Expected `int`, got `bool`"),
        ({"source": {"topic": "t", "partition": "0", "offset": 1}}, "`$.source.partition`"),
        ({"model": "x" * DETECTION_MAX_BYTES}, "bytes, over the 4,096 expected"),
    ],
)
def test_a_foreign_detection_is_refused_with_why(document: dict[str, object], why: str) -> None:
    with pytest.raises(ForeignDocument, match=why.replace("$", r"\$")):
        detection_of(_read_back({**detection_document(make_detection()), **document}, 4096))


@settings(max_examples=EXAMPLES)
@given(garbage=st.binary(max_size=200))
def test_any_bytes_in_a_document_decode_or_are_refused_as_foreign(garbage: bytes) -> None:
    # As a server might send them, in a frame the driver takes: its length, then anything.
    raw = (len(garbage) + 5).to_bytes(4, "little") + garbage + b"\x00"
    try:
        document = decoded(RawBSONDocument(raw), max_bytes=DETECTION_MAX_BYTES)
    except ForeignDocument:
        return
    assert isinstance(document, dict)


def test_text_that_is_not_utf8_is_refused_as_foreign() -> None:
    encoded = bson.encode({**detection_document(make_detection()), "make": "Toyota"})
    raw = RawBSONDocument(encoded.replace(b"Toyota", b"Toy\xffta"))
    with pytest.raises(ForeignDocument, match="undecodable"):
        decoded(raw, max_bytes=DETECTION_MAX_BYTES)
