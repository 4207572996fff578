import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BeforeValidator

from roadwatch.api.cursors import decode_cursor, encode_cursor
from roadwatch.api.deps import CurrentUser, Services
from roadwatch.api.errors import responses
from roadwatch.api.schemas import DetectionOut, DetectionPage
from roadwatch.stores.base import DetectionFilter, DetectionStore, Position

router = APIRouter(tags=["detections"])

Text = Annotated[str | None, Query(min_length=1, max_length=128, pattern=r"^[^\x00]*$")]


def _iso_8601(value: object) -> object:
    # pydantic would take a bare number as seconds since the epoch; the schema says date-time.
    if isinstance(value, str) and not re.match(r"^\d{4}-\d{2}-\d{2}", value):
        raise ValueError("must be an ISO 8601 date-time, such as 2024-05-01T12:00:00Z")
    return value


Moment = Annotated[datetime, BeforeValidator(_iso_8601)]


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@router.get(
    "/detections",
    responses=responses(401, 422),
    summary="Indexed detections, newest first",
    description="Paginate with `skip` and `limit`, or for deep pages with `cursor` (the "
    "`next_cursor` of the previous page), whose cost does not grow with depth.",
)
async def list_detections(
    user: CurrentUser,
    services: Services,
    skip: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    make: Text = None,
    model: Text = None,
    category: Text = None,
    year: Annotated[int | None, Query(ge=1886, le=2200)] = None,
    since: Annotated[Moment | None, Query(description="Detected at or after")] = None,
    until: Annotated[Moment | None, Query(description="Detected before")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> DetectionPage:
    where = DetectionFilter(
        make=make, model=model, category=category, year=year, since=_utc(since), until=_utc(until)
    )
    after = decode_cursor(cursor) if cursor else None
    store = services.detections
    items = await store.list(where, skip=skip, limit=limit, after=after)
    next_cursor = None
    if len(items) == limit:
        next_cursor = encode_cursor(Position(items[-1].timestamp, items[-1].id))
    return DetectionPage(
        items=[DetectionOut.of(item) for item in items],
        total=await count_matching(store, where),
        skip=skip,
        limit=limit,
        next_cursor=next_cursor,
    )


async def count_matching(store: DetectionStore, where: DetectionFilter) -> int:
    """How many detections match; from the maintained per-make counts when they can say."""
    if where == DetectionFilter():
        return sum((await store.count_by_make()).values())
    if where == DetectionFilter(make=where.make):
        return (await store.count_by_make()).get(where.make or "", 0)
    return await store.count(where)
