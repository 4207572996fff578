"""Warnings about bad input, held to a line of each kind every so often: a flood of bad
records is a few lines, each saying how many were held back, not one a record."""

import logging

import pytest

from roadwatch.api.alerts_feed import KafkaAlertFeed
from roadwatch.logs import Throttled
from tests.helpers.clock import Clock
from tests.helpers.records import consumer_record

LOGGER = "tests.throttled"


def test_a_kind_is_logged_at_once_then_once_an_interval_counting_what_it_held(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    throttled = Throttled(logging.getLogger(LOGGER), every=10, clock=clock)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for second in range(25):
            clock.now = float(second)
            for _ in range(100):
                throttled.warning("bad json", "skipped a record at %d s", second)
            throttled.warning("too large", "skipped a large record")

    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "skipped a record at 0 s",
        "skipped a large record",
        "skipped a record at 10 s; 999 more such line(s) held back since the last",
        "skipped a large record; 9 more such line(s) held back since the last",
        "skipped a record at 20 s; 999 more such line(s) held back since the last",
        "skipped a large record; 9 more such line(s) held back since the last",
    ]


def test_a_flood_of_records_that_are_no_alerts_is_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    skipped = []
    feed = KafkaAlertFeed(kafka={}, topic="alerts", skipped=lambda: skipped.append(1))
    with caplog.at_level(logging.WARNING, logger="roadwatch.api.alerts_feed"):
        for offset in range(10_000):
            assert feed._alert(consumer_record(b"not an alert", offset=offset)) is None

    assert len(skipped) == 10_000
    assert len(caplog.records) == 1
    assert "not an alert" in caplog.records[0].getMessage()
