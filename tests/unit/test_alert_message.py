"""An alert on the topic: its JSON, field by field and in order, for any text it may hold."""

import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
from hypothesis import given
from hypothesis import strategies as st

from roadwatch.alerts import alert_key, encode_alert, milliseconds_iso, read_alert
from roadwatch.domain import Alert, RuleRef
from roadwatch.stores.postgres_rows import alert_row
from tests.helpers.factories import make_detection

# Any text Python can encode: quotes, backslashes, line separators, emoji, controls.
TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20)


@given(TEXT, TEXT, TEXT, st.lists(TEXT, min_size=1, max_size=4), st.integers(0, 10))
def test_an_alert_is_the_documented_json_whatever_its_text(
    make: str, model: str, category: str, names: list[str], more: int
) -> None:
    detection = make_detection(make=make, model=model, category=category)
    rules = tuple(RuleRef(uuid.uuid4(), name) for name in names)
    alert = Alert(detection, rules, len(rules) + more)

    encoded = encode_alert(alert)

    expected = {
        "id": str(detection.id),
        "timestamp": detection.timestamp.isoformat(timespec="milliseconds"),
        "year": detection.year,
        "make": make,
        "model": model,
        "category": category,
        "rules": [{"id": str(rule.id), "name": rule.name} for rule in rules],
        "rules_matched": len(rules) + more,
    }
    assert list(orjson.loads(encoded).items()) == list(expected.items())
    assert alert_key(alert) == str(detection.id).encode()
    read = read_alert(encoded)
    assert (read.id, read.rule_ids) == (detection.id, frozenset(rule.id for rule in rules))
    assert orjson.loads(read.text) == expected
    assert orjson.loads(alert_row(alert)[-1]) == expected["rules"]


OFFSETS = st.integers(-23 * 60, 23 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))


@given(st.datetimes(timezones=st.just(UTC) | OFFSETS))
def test_an_alerts_time_is_isoformat_to_the_millisecond_for_any_time(moment: datetime) -> None:
    assert milliseconds_iso(moment) == moment.isoformat(timespec="milliseconds")
