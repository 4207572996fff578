from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from roadwatch.api.cursors import decode_cursor, encode_cursor
from roadwatch.api.deps import CurrentUser, Services
from roadwatch.api.errors import responses
from roadwatch.api.json_body import JsonBody
from roadwatch.api.json_request import JsonTextRoute
from roadwatch.api.moments import Moment, counted_window
from roadwatch.api.schemas import DetectionPage, detection_json
from roadwatch.stores.detection_store import (
    COUNT_CAP,
    DetectionFilter,
    DetectionStore,
    Dimension,
    Position,
    kept_counts_for,
)
from roadwatch.time_buckets import Bucket

router = APIRouter(tags=["detections"], route_class=JsonTextRoute)

Text = Annotated[str | None, Query(min_length=1, max_length=128, pattern=r"^[^\x00]*$")]


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
    total, capped = await count_matching(store, where, now=services.clock())
    page = {
        "items": [detection_json(item) for item in items],
        "total": total,
        "total_capped": capped,
        "skip": skip,
        "limit": limit,
        "next_cursor": next_cursor,
    }
    return JsonBody(page)


async def count_matching(
    store: DetectionStore, where: DetectionFilter, *, now: datetime
) -> tuple[int, bool]:
    """How many detections match, and whether that is only a lower bound (COUNT_CAP).

    From the maintained counts, exactly, when they can say: of one make or one category (or
    of all), of all time or of a window on whole minutes. Else counted, but no further than
    the cap, so that no filter costs a scan of the table.
    """
    counted_by = _counted_by(where)
    if counted_by is None:
        counted = await store.count(where, cap=COUNT_CAP)
        return min(counted, COUNT_CAP), counted > COUNT_CAP
    by, key = counted_by
    if where.since is None and where.until is None:
        counts = await store.count_by(by)
    else:
        counts = await store.counts_between(by, *counted_window(where.since, where.until, now=now))
    return (sum(counts.values()) if key is None else counts.get(key, 0)), False


def _counted_by(where: DetectionFilter) -> tuple[Dimension, str | None] | None:
    """The counts that say how many match (a dimension, and its key or None for all), if
    any do: those the store keeps for the filter, over a window on whole minutes. All of
    them are read by make: in MongoDB those are a document a source partition, where the
    counts by category are one a day."""
    since, until = where.since, where.until
    if not all(moment is None or Bucket.MINUTE.is_edge(moment) for moment in (since, until)):
        return None
    if since is not None and until is not None and since >= until:
        return None
    return kept_counts_for(where, all_by=Dimension.MAKE)
