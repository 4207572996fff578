"""`roadwatch status` and `up`'s status line, from a snapshot: what each says, and when the
system counts as ready."""

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from roadwatch.status.gather import stored_rate, webhook_health
from roadwatch.status.render import show, summary
from roadwatch.status.scrape import Samples, parse_metrics
from roadwatch.status.snapshot import Part, Snapshot, WebhookHealth

METRICS = """\
# HELP roadwatch_detections_stored_total Detections stored
# TYPE roadwatch_detections_stored_total counter
roadwatch_detections_stored_total{store="postgresql"} 1200.0
# HELP roadwatch_webhook_deliveries_total Webhook POSTs made, by result
# TYPE roadwatch_webhook_deliveries_total counter
roadwatch_webhook_deliveries_total{result="delivered"} 40.0
roadwatch_webhook_deliveries_total{result="retry"} 3.0
# TYPE roadwatch_webhook_subscriptions gauge
roadwatch_webhook_subscriptions 2.0
# TYPE roadwatch_webhook_retry_queue_depth gauge
roadwatch_webhook_retry_queue_depth 3.0
# TYPE roadwatch_webhook_oldest_pending_seconds gauge
roadwatch_webhook_oldest_pending_seconds 95.5
"""


def snapshot(**changes: object) -> Snapshot:
    values: dict[str, object] = {
        "servers": [Part("Kafka", "", True), Part("PostgreSQL at 127.0.0.1:5433/x", "", True)],
        "processes": [
            Part("api", "http://127.0.0.1:8000/readyz", True),
            Part("indexer", "http://127.0.0.1:9400/readyz", True),
            Part("deliver", "http://127.0.0.1:9401/readyz", True),
        ],
        "lag": {"roadwatch-indexer": 12, "roadwatch-deliver": None},
        "published_per_second": 1003.4,
        "stored_per_second": 998.7,
        "alerts_last_minute": 13_200,
        "dead_letters_last_hour": {"d.dlq": {"malformed_json": 3}, "w.dlq": {"HTTP 410": 1}},
    }
    return Snapshot(**(values | changes))  # type: ignore[arg-type]


def metrics(text: str) -> Samples:
    samples = parse_metrics(text)
    assert samples is not None
    return samples


def test_metrics_are_read_back_and_summed_by_name_and_label() -> None:
    samples = metrics(METRICS)
    assert samples.total("roadwatch_detections_stored_total") == 1200
    assert samples.total("roadwatch_webhook_deliveries_total") == 43
    assert samples.total("roadwatch_webhook_deliveries_total", result="retry") == 3
    assert samples.total("roadwatch_no_such_metric") is None
    assert samples.by_label("roadwatch_webhook_deliveries_total", "result") == {
        "delivered": 40,
        "retry": 3,
    }


def test_rates_and_webhook_health_come_from_two_scrapes() -> None:
    before = metrics(METRICS)
    after = metrics(
        METRICS.replace("1200.0", "1400.0").replace('"delivered"} 40.0', '"delivered"} 50.0')
    )
    assert stored_rate(before, after, 2.0) == 100
    assert stored_rate(None, after, 2.0) is None
    assert webhook_health(before, after) == WebhookHealth(
        subscriptions=2,
        retry_queue=3,
        oldest_pending_seconds=95.5,
        attempts={"delivered": 10, "retry": 0},
    )


def test_the_status_line_gives_the_flow_and_what_is_not_ready() -> None:
    assert summary(snapshot()) == (
        "1,003 published/s, 999 stored/s, lag 12, 13,200 alerts in the last minute, "
        "4 dead letters in the last hour; all ready"
    )
    down = snapshot(
        processes=[Part("indexer", "", False, "not running (connection refused)")],
        stored_per_second=None,
        alerts_last_minute=None,
        dead_letters_counted_in_part=["d.dlq"],
    )
    assert not down.ready
    assert summary(down) == (
        "1,003 published/s, ? stored/s, lag 12, ? alerts in the last minute, "
        "4+ dead letters in the last hour; NOT READY: indexer"
    )


def test_the_table_names_each_part_and_every_figure() -> None:
    console = Console(record=True, width=160)
    show(
        snapshot(
            processes=[Part("deliver", "", False, "recording webhook deliveries has failed")],
            webhooks=WebhookHealth(2, 3, 95.5, {"delivered": 10.0, "retry": 0.0}),
            unknown={"lag of roadwatch-deliver": "GroupAuthorizationFailedError"},
        ),
        console,
    )
    text = console.export_text()
    for expected in (
        "Kafka",
        "not ready",
        "recording webhook deliveries has failed",
        "lag of roadwatch-indexer",
        "nothing committed yet",
        "13,200 in the last minute",
        "3 malformed_json in the last hour",
        "1 HTTP 410 in the last hour",
        "2 subscription(s), 3 waiting for a retry (oldest 96 s); just now: 10 delivered",
        "GroupAuthorizationFailedError",
    ):
        assert expected in text, f"{expected!r} not in:\n{text}"


def test_json_carries_readiness_beside_every_field() -> None:
    found = snapshot(processes=[Part("api", "", False, "no answer within 3 s")]).to_json()
    assert found["ready"] is False
    assert found["lag"] == {"roadwatch-indexer": 12, "roadwatch-deliver": None}
    assert found["processes"] == [
        {"name": "api", "where": "", "ready": False, "problem": "no answer within 3 s"}
    ]


@given(st.text(max_size=300))
@settings(max_examples=200)
def test_whatever_a_port_answers_as_metrics_is_read_or_refused_never_raised(text: str) -> None:
    found = parse_metrics(text)
    assert found is None or isinstance(found, Samples)


def test_a_hostile_dead_letter_reason_is_printed_as_text_not_as_markup_or_escapes() -> None:
    console = Console(record=True, width=200)
    show(snapshot(dead_letters_last_hour={"d.dlq": {"[red]boom\\x1b[2J": 1}}), console)
    text = console.export_text()
    assert "[red]boom" in text
