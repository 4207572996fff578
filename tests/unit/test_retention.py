from datetime import UTC, date, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from roadwatch.indexer.processors import RefuseExpired
from roadwatch.indexer.retention import DayKeeper
from roadwatch.rejections import Reason, RecordsRefused
from tests.helpers.factories import make_detection

NOW = datetime(2026, 11, 29, 0, 30, tzinfo=UTC)


async def test_only_detections_before_the_window_are_refused_each_named() -> None:
    step = RefuseExpired(timedelta(days=7), clock=lambda: NOW)
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
