"""Builders of valid test data, each unique unless told otherwise."""

import itertools
import uuid
from datetime import UTC, datetime, timedelta

from roadwatch.domain import Detection, Source
from roadwatch.webhooks.signing import new_secret
from roadwatch.webhooks.subscriptions import Webhook

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


def make_webhook(**fields: object) -> Webhook:
    """A subscription to every alert, made now; `fields` replace any of its values."""
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "url": "https://example.com/hook",
        "rule_ids": None,
        "description": "",
        "enabled": True,
        "secret": new_secret(),
        "created_at": datetime.now(UTC),
    }
    return Webhook(**(values | fields))  # type: ignore[arg-type]
