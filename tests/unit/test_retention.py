from datetime import UTC, date, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from roadwatch.bootstrap.indexer import accepted_window
from roadwatch.indexer.processors import RefuseAheadOf, RefuseOlderThan
from roadwatch.indexer.retention import DayKeeper
from roadwatch.rejections import Reason, RecordsRefused
from roadwatch.settings import Settings
from tests.helpers.factories import make_detection

NOW = datetime(2026, 11, 29, 0, 30, tzinfo=UTC)


async def test_only_detections_before_the_window_are_refused_each_named() -> None:
    step = RefuseOlderThan(
        timedelta(days=7), reason=Reason.EXPIRED, what="retention window", clock=lambda: NOW
    )
    window_start = NOW - timedelta(days=7)
    batch = [
        make_detection(timestamp=window_start),
        make_detection(timestamp=window_start - timedelta(milliseconds=1)),
        make_detection(timestamp=NOW),
        make_detection(timestamp=NOW - timedelta(days=400)),
    ]

    with pytest.raises(RecordsRefused) as refused:
        await step(batch)

    assert sorted(refused.value.culprits) == [1, 3]
    assert {why.reason for why in refused.value.culprits.values()} == {Reason.EXPIRED}
    assert "2026-11-22T00:30:00+00:00" in refused.value.culprits[1].detail
    assert await step([batch[0], batch[2]]) == [batch[0], batch[2]]


@pytest.mark.parametrize(
    ("now", "first_kept"),
    [
        (NOW, date(2026, 11, 22)),
        (datetime(2026, 11, 29, 23, 59, 59, tzinfo=UTC), date(2026, 11, 22)),
        (datetime(2026, 11, 30, tzinfo=UTC), date(2026, 11, 23)),
    ],
)
def test_the_first_kept_day_is_the_day_the_window_starts_in(
    now: datetime, first_kept: date
) -> None:
    keeper = DayKeeper(
        store=None,  # type: ignore[arg-type]  # never reached: the arithmetic alone
        keep_for=timedelta(days=7),
        clock=lambda: now,
        registry=CollectorRegistry(),
    )

    assert keeper.first_kept_day() == first_kept


def test_without_retention_no_day_is_removed() -> None:
    keeper = DayKeeper(
        store=None,  # type: ignore[arg-type]
        keep_for=None,
        clock=lambda: NOW,
        registry=CollectorRegistry(),
    )

    assert keeper.first_kept_day() is None


async def test_the_window_the_store_accepts_refuses_older_detections_as_too_old() -> None:
    assert accepted_window(Settings(_env_file=None)) == timedelta(days=7)
    assert accepted_window(Settings(_env_file=None, detections_accept_days=None)) is None
    step = RefuseOlderThan(
        timedelta(days=7),
        reason=Reason.TOO_OLD,
        what="window of times the store accepts",
        clock=lambda: NOW,
    )
    with pytest.raises(RecordsRefused) as refused:
        await step([make_detection(timestamp=NOW - timedelta(days=8))])
    assert refused.value.culprits[0].reason == Reason.TOO_OLD
    assert "the window of times the store accepts" in refused.value.culprits[0].detail


def test_a_window_unset_reaches_another_process_as_unset() -> None:
    unset = Settings(_env_file=None, detections_accept_days=None)
    environment = unset.as_environment()
    assert environment["DETECTIONS_ACCEPT_DAYS"] == "none"
    assert Settings(_env_file=None, detections_accept_days="none").detections_accept_days is None


async def test_detections_further_ahead_than_the_margin_are_refused_as_too_new() -> None:
    assert Settings(_env_file=None).detections_accept_ahead_days == 1.0
    step = RefuseAheadOf(timedelta(days=1), clock=lambda: NOW)
    latest = NOW + timedelta(days=1)
    batch = [
        make_detection(timestamp=latest),
        make_detection(timestamp=latest + timedelta(milliseconds=1)),
        make_detection(timestamp=NOW - timedelta(days=400)),
        make_detection(timestamp=NOW + timedelta(days=29)),
    ]

    with pytest.raises(RecordsRefused) as refused:
        await step(batch)

    assert sorted(refused.value.culprits) == [1, 3]
    assert {c.reason for c in refused.value.culprits.values()} == {Reason.TOO_NEW}
    assert "further ahead of this clock" in refused.value.culprits[1].detail
    assert await step(batch[:1]) == batch[:1]


@pytest.mark.parametrize("days", [0, -1, 30.5])
def test_the_margin_ahead_is_more_than_nothing_and_at_most_30_days(days: float) -> None:
    with pytest.raises(ValueError, match="detections_accept_ahead_days"):
        Settings(_env_file=None, detections_accept_ahead_days=days)
