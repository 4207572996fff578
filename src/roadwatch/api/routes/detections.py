import re
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AfterValidator, BeforeValidator

from roadwatch.api.cursors import decode_cursor, encode_cursor
from roadwatch.api.deps import CurrentUser, Services
from roadwatch.api.errors import responses
from roadwatch.api.json_body import JsonBody
from roadwatch.api.schemas import DetectionPage, detection_json
from roadwatch.stores.base import COUNT_CAP, DetectionFilter, DetectionStore, Position

router = APIRouter(tags=["detections"])

Text = Annotated[str | None, Query(min_length=1, max_length=128, pattern=r"^[^\x00]*$")]


def _iso_8601(value: object) -> object:
    # pydantic would take a bare number as seconds since the epoch; the schema says date-time.
    if isinstance(value, str) and not re.match(r"^\d{4}-\d{2}-\d{2}", value):
        raise ValueError("must be an ISO 8601 date-time, such as 2024-05-01T12:00:00Z")
    return value


def _in_utc(moment: datetime) -> datetime:
    """The moment in UTC (a time without an offset is taken as UTC); one that has no UTC
    time, such as 0001-01-01T00:00:00+01:00, is invalid."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("lies outside the years 1 to 9999 in UTC") from None


Moment = Annotated[datetime, BeforeValidator(_iso_8601), AfterValidator(_in_utc)]


@router.get(
    "/detections",
    response_model=DetectionPage,
    responses=responses(401, 422, 503),
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
) -> JsonBody:
    where = DetectionFilter(
        make=make, model=model, category=category, year=year, since=since, until=until
    )
    after = decode_cursor(cursor) if cursor else None
    store = services.detections
    items = await store.list(where, skip=skip, limit=limit, after=after)
    next_cursor = None
    if len(items) == limit:
        next_cursor = encode_cursor(Position(items[-1].timestamp, items[-1].id))
    total, capped = await count_matching(store, where)
    page = {
        "items": [detection_json(item) for item in items],
        "total": total,
        "total_capped": capped,
        "skip": skip,
        "limit": limit,
        "next_cursor": next_cursor,
    }
    return JsonBody(page)


async def count_matching(store: DetectionStore, where: DetectionFilter) -> tuple[int, bool]:
    """How many detections match, and whether that is only a lower bound (COUNT_CAP).

    From the maintained per-make counts, exactly, when they can say; else counted, but
    no further than the cap, so that no filter costs a scan of the table.
    """
    if where == DetectionFilter():
        return sum((await store.count_by_make()).values()), False
    if where == DetectionFilter(make=where.make):
        return (await store.count_by_make()).get(where.make or "", 0), False
    counted = await store.count(where, cap=COUNT_CAP)
    return min(counted, COUNT_CAP), counted > COUNT_CAP
