"""The producer's progress lines: one per interval, however often it reports, and one at
the end. At low rates it used to print the same line ten times in a millisecond."""

import logging

import pytest

from roadwatch.catalog.producer import ProducerStats
from roadwatch.cli.produce import ProgressLog
from tests.helpers.clock import Clock


def test_at_most_one_line_per_interval_and_one_at_the_end(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock(1000.0)
    progress = ProgressLog(5.0, clock=clock)
    stats = ProducerStats()
    with caplog.at_level(logging.INFO, logger="roadwatch.produce"):
        # Twelve seconds of reports every millisecond, every detection acknowledged at once.
        for sent in range(1, 12_001):
            clock.now = 1000.0 + sent / 1000
            stats.sent = sent
            stats.acknowledged = stats.sent
            progress(stats)
        progress.done(stats)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 3
    assert lines[0].startswith("sent 5000 detections (1000/s)")
    assert lines[-1] == "done: sent 12000 detections, 12000 acknowledged, 0 failed"
