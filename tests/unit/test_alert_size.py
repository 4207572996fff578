"""An alert stays under the 64 KiB its readers take, however many rules it matched."""

import uuid

import orjson

from roadwatch.alerts import encode_alert
from roadwatch.domain import MAX_RULES_NAMED, Alert, RuleRef
from roadwatch.parsing import MAX_TEXT_LENGTH
from roadwatch.watchlists.matching import RuleIndex
from roadwatch.watchlists.rules import Rule
from tests.helpers.factories import make_detection

# The widest character in UTF-8, and the longest text each field holds.
WIDE = "\U0001f697"


def test_an_alert_matching_every_rule_names_the_first_and_counts_them_all() -> None:
    rules = [Rule(id=uuid.uuid4(), name=f"{i:05} {WIDE * 94}", make="Jeep") for i in range(5000)]
    detection = make_detection(make="Jeep", model=WIDE * MAX_TEXT_LENGTH)
    alert = Alert.of(detection, RuleIndex(rules).matches(detection))
    encoded = encode_alert(alert)
    body = orjson.loads(encoded)
    assert body["rules_matched"] == 5000
    assert [r["name"][:5] for r in body["rules"]] == [f"{i:05}" for i in range(MAX_RULES_NAMED)]
    assert len(encoded) < 32 * 1024


def test_an_alert_matching_a_few_rules_names_them_all() -> None:
    refs = tuple(RuleRef(uuid.uuid4(), name) for name in ("a", "b"))
    alert = Alert.of(make_detection(), refs)
    assert (alert.rules, alert.rules_matched) == (refs, 2)
