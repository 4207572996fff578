from typing import Annotated

from fastapi import APIRouter, Query

from roadwatch.api.deps import CurrentUser, Services
from roadwatch.api.errors import responses
from roadwatch.api.json_body import JsonBody
from roadwatch.api.json_request import JsonTextRoute
from roadwatch.api.moments import Moment, counted_window, timeline_window
from roadwatch.api.schemas import TimelineOut, timeline_json
from roadwatch.stores.detection_store import Dimension
from roadwatch.time_buckets import Bucket

router = APIRouter(tags=["detections"], route_class=JsonTextRoute)


@router.get(
    "/stats",
    responses=responses(401, 422, 503),
    summary="Vehicle counts per make (or per category), largest first",
    description="Of everything stored, or of a window: `since` and `until` (ISO 8601, UTC or "
    "with an offset) on whole minutes, either one open. Read from counts kept per minute, "
    "hour and day, whatever the window.",
    response_model=dict[str, int],
    response_description='A JSON object from make to count, e.g. {"Chevrolet": 966, "Ford": 826}',
)
async def stats(
    user: CurrentUser,
    services: Services,
    by: Dimension = Dimension.MAKE,
    since: Annotated[Moment | None, Query(description="Detected at or after")] = None,
    until: Annotated[Moment | None, Query(description="Detected before")] = None,
) -> JsonBody:
    store = services.detections
    if since is None and until is None:
        return JsonBody(await store.count_by(by))
    first, end = counted_window(since, until, now=services.clock())
    return JsonBody(await store.counts_between(by, first, end))


@router.get(
    "/stats/timeline",
    responses=responses(401, 422, 503),
    summary="Detections and alerts per minute, hour or day, by make or by category",
    description="Every bucket that overlaps the window, oldest first, empty ones included; "
    "buckets begin on UTC minutes, hours and days. The window is `until` (default now) and "
    "`since` (default an hour, a day or 30 days before, by bucket); at most 1,440 buckets.",
    response_model=TimelineOut,
)
async def timeline(
    user: CurrentUser,
    services: Services,
    bucket: Bucket = Bucket.HOUR,
    by: Dimension = Dimension.MAKE,
    since: Annotated[Moment | None, Query(description="Detected at or after")] = None,
    until: Annotated[Moment | None, Query(description="Detected before")] = None,
) -> JsonBody:
    first, end = timeline_window(bucket, since, until, now=services.clock())
    buckets = await services.detections.timeline(bucket=bucket, since=first, until=end, by=by)
    return JsonBody(timeline_json(bucket, by, first, end, buckets))
