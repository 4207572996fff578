"""Builders of valid test data, each unique unless told otherwise."""

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from roadwatch.domain import Detection, Source

_offsets = itertools.count()
EPOCH = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make_detection(
    *,
    make: str = "Toyota",
    model: str = "Land Cruiser",
    category: str = "SUV",
    year: int = 2011,
    timestamp: datetime | None = None,
    id: uuid.UUID | None = None,
    source: Source | None = None,
) -> Detection:
    offset = next(_offsets)
    return Detection(
        id=id or uuid.uuid4(),
        timestamp=timestamp or EPOCH + timedelta(milliseconds=offset),
        year=year,
        make=make,
        model=model,
        category=category,
        source=source or Source("test.detections", offset % 3, offset),
    )
