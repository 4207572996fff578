"""Which maintained counts say how many detections a filter matches: one make's, one
category's, or all of them; none for a model, a year, or a make and a category together."""

from datetime import UTC, datetime

import pytest

from roadwatch.stores.detection_store import DetectionFilter, Dimension, kept_counts_for

NOON = datetime(2025, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("where", "kept"),
    [
        (DetectionFilter(), (Dimension.CATEGORY, None)),
        (DetectionFilter(since=NOON, until=NOON), (Dimension.CATEGORY, None)),
        (DetectionFilter(make="Kia"), (Dimension.MAKE, "Kia")),
        (DetectionFilter(category="SUV", since=NOON), (Dimension.CATEGORY, "SUV")),
        (DetectionFilter(make="Kia", category="SUV"), None),
        (DetectionFilter(model="Soul"), None),
        (DetectionFilter(make="Kia", year=2011), None),
    ],
)
def test_the_counts_kept_for_a_filter_whatever_its_times(
    where: DetectionFilter, kept: tuple[Dimension, str | None] | None
) -> None:
    assert kept_counts_for(where, all_by=Dimension.CATEGORY) == kept


def test_all_detections_are_counted_under_the_dimension_asked() -> None:
    assert kept_counts_for(DetectionFilter(), all_by=Dimension.MAKE) == (Dimension.MAKE, None)
