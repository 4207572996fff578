"""Detections and alerts as rows of the PostgreSQL store, and the conflicts a batch met."""

from datetime import UTC, date, datetime
from typing import Any

import asyncpg
import msgspec

from roadwatch.domain import Alert, Detection, Source
from roadwatch.rejections import Reason, RecordsRefused
from roadwatch.stores.detection_store import id_conflict
from roadwatch.stores.postgres_statements import FIND_CONFLICTS

_encode = msgspec.json.Encoder().encode


async def refuse_conflicts(driver: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    conflicts = await driver.fetch(FIND_CONFLICTS)
    if not conflicts:
        return
    index = {(row[6], row[7], row[8]): place for place, row in enumerate(rows)}
    culprits = {
        index[(topic, partition, offset)]: id_conflict(
            rows[index[(topic, partition, offset)]][0],
            Source(topic, partition, offset),
            Source(holder_topic, holder_partition, holder_offset),
        )
        for topic, partition, offset, holder_topic, holder_partition, holder_offset in conflicts
    }
    raise RecordsRefused(
        f"{len(culprits)} id(s) already held by other records",
        reason=Reason.ID_CONFLICT,
        culprits=culprits,
    )


def utc_day(moment: datetime) -> date:
    return (moment if moment.tzinfo is UTC else moment.astimezone(UTC)).date()


def detection_row(d: Detection) -> tuple[Any, ...]:
    """A detection as the COLUMNS, in their order."""
    return (
        d.id,
        d.timestamp,
        d.year,
        d.make,
        d.model,
        d.category,
        d.source.topic,
        d.source.partition,
        d.source.offset,
    )


def alert_row(alert: Alert) -> tuple[Any, ...]:
    # A rule is written as {"id": …, "name": …}.
    return (*detection_row(alert.detection), _encode(alert.rules).decode())


def detection_of(row: asyncpg.Record) -> Detection:
    """A detection from a row whose first columns are COLUMNS, in their order."""
    id_, at, year, make, model, category, topic, partition, offset = row[:9]
    return Detection(id_, at, year, make, model, category, Source(topic, partition, offset))
