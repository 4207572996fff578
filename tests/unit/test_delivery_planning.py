"""The deliverer's pure parts: which deliveries an alert record makes, and how a response is
judged."""

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from roadwatch.alerts import encode_alert
from roadwatch.domain import Alert, RuleRef
from roadwatch.kafka.record import Record
from roadwatch.webhooks.attempts import judge
from roadwatch.webhooks.planning import deliveries_of
from roadwatch.webhooks.ports import Response
from roadwatch.webhooks.retries import Outcome, RetrySchedule
from roadwatch.webhooks.subscriptions import Delivery, Webhook, delivery_id
from tests.helpers.factories import make_detection

NOW = datetime(2026, 12, 5, 12, tzinfo=UTC)
RULE = RuleRef(uuid.uuid4(), "SUVs")


def record(value: bytes | None, *, timestamp: int = int(NOW.timestamp() * 1000)) -> Record:
    return Record("intellisite.alerts", 0, 7, timestamp, None, value, ())


def webhook(rule_ids: frozenset[uuid.UUID] | None = None) -> Webhook:
    return Webhook(
        id=uuid.uuid4(),
        url="https://example.com/hook",
        rule_ids=rule_ids,
        description="",
        enabled=True,
        secret="whsec_" + "A" * 43,
        created_at=NOW - timedelta(days=1),
    )


def test_an_alert_makes_one_delivery_to_each_subscription_that_wants_it() -> None:
    alert = Alert(make_detection(), (RULE,))
    everything, its_rule, another_rule = (
        webhook(),
        webhook(frozenset({RULE.id})),
        webhook(frozenset({uuid.uuid4()})),
    )

    planned = deliveries_of(record(encode_alert(alert)), [everything, its_rule, another_rule])

    assert isinstance(planned, list)
    assert [d.webhook_id for d in planned] == [everything.id, its_rule.id]
    assert planned[0].id == delivery_id(everything.id, alert.detection.id)
    assert planned[0].body == planned[1].body
    assert str(alert.detection.id).encode() in planned[0].body


def test_a_record_that_is_no_alert_says_why_and_makes_nothing() -> None:
    for value in (None, b"", b"{}", b"[1]", b'{"id": 1}'):
        reason = deliveries_of(record(value), [webhook()])
        assert isinstance(reason, str)
        assert reason.startswith("not an alert")


def test_no_subscription_no_delivery() -> None:
    alert = Alert(make_detection(), (RULE,))
    assert deliveries_of(record(encode_alert(alert)), []) == []


def delivery(*, attempts: int = 1, age: timedelta = timedelta(minutes=1)) -> Delivery:
    return Delivery(uuid.uuid4(), uuid.uuid4(), b"{}", NOW - age, attempts=attempts)


def test_an_answer_is_judged_delivered_failed_or_retried() -> None:
    schedule = RetrySchedule(first=10, longest=100, give_up_after=3600)

    assert judge(delivery(), Response(204, 1.0), NOW, schedule) == (Outcome.DELIVERED, None)
    assert judge(delivery(), Response(410, 1.0), NOW, schedule) == (Outcome.FAILED, None)
    late = delivery(age=timedelta(hours=2))
    assert judge(late, Response(503, 1.0), NOW, schedule) == (Outcome.FAILED, None)
    outcome, due = judge(delivery(), Response(503, 1.0, retry_after=60), NOW, schedule)
    assert outcome == Outcome.RETRY
    assert due is not None
    assert NOW + timedelta(seconds=60) <= due <= NOW + timedelta(seconds=100)


def test_an_alert_published_before_a_subscription_was_made_is_not_sent_to_it() -> None:
    alert = Alert(make_detection(), (RULE,))
    before = int((NOW - timedelta(days=2)).timestamp() * 1000)
    assert deliveries_of(record(encode_alert(alert), timestamp=before), [webhook()]) == []


@given(
    value=st.one_of(st.none(), st.binary(max_size=2048)), timestamp=st.integers(-(2**63), 2**63 - 1)
)
def test_any_bytes_at_any_time_make_deliveries_or_a_reason_never_an_error(
    value: bytes | None, timestamp: int
) -> None:
    planned = deliveries_of(record(value, timestamp=timestamp), [webhook()])
    assert isinstance(planned, list | str)
