from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Query
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from roadwatch.api.alerts_feed import ClientTooSlow
from roadwatch.api.cursors import decode_cursor, encode_cursor
from roadwatch.api.deps import CurrentUser, Services
from roadwatch.api.errors import responses
from roadwatch.api.event_ids import decode_position
from roadwatch.api.json_request import JsonTextRoute
from roadwatch.api.moments import Moment
from roadwatch.api.schemas import AlertOut, AlertPage
from roadwatch.stores.detection_store import AlertFilter, Position

router = APIRouter(tags=["alerts"], route_class=JsonTextRoute)

KEEP_ALIVE_SECONDS = 15


@router.get(
    "/alerts",
    responses={200: {"content": {"text/event-stream": {}}}, **responses(401, 422, 429)},
    response_class=EventSourceResponse,
    summary="Watchlist alerts, live (Server-Sent Events)",
    description="Each `alert` event carries an alert as JSON and an `id`; reconnect with "
    "`Last-Event-ID` to receive exactly what was missed. The stream opens with an `id` "
    "alone, the position it starts from, so that a reconnect before the first alert misses "
    "nothing. With `rule`, "
    "only the alerts that matched that watchlist rule. A client that falls too far behind "
    "gets a `dropped` event and is disconnected. A client that resumes from further back than"
    " the server's window of recent alerts (ALERTS_RESUME_WINDOW) gets a `gap` event per "
    "partition, naming the offsets missed, and reads those alerts from /alerts/history. A "
    "user may hold ALERT_STREAMS_PER_USER streams at once (10); past that, or past what the "
    "server holds, 429 with `Retry-After`.",
)
async def alerts(
    user: CurrentUser,
    services: Services,
    last_event_id: Annotated[str | None, Header(max_length=4000)] = None,
    rule: Annotated[UUID | None, Query(description="Only alerts of this rule")] = None,
) -> EventSourceResponse:
    if last_event_id:
        decode_position(last_event_id)
    slot = services.streams.take(user.id)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        try:
            following = None if rule is None else str(rule)
            async for event in services.alerts.events(last_event_id, rule=following):
                if event.kind == "position":
                    yield ServerSentEvent(id=event.id)
                else:
                    yield ServerSentEvent(data=event.data, id=event.id, event=event.kind)
        except ClientTooSlow:
            services.metrics.sse_dropped.inc()
            yield ServerSentEvent(
                event="dropped",
                data='{"detail": "too far behind; reconnect with Last-Event-ID to resume"}',
            )
        finally:
            slot.release()

    # Given back when the stream ends, however it ends: also when it never started.
    return EventSourceResponse(
        stream(), ping=KEEP_ALIVE_SECONDS, background=BackgroundTask(slot.release)
    )


@router.get(
    "/alerts/history",
    responses=responses(401, 422, 503),
    summary="Alerts raised, newest first",
    description="Every alert the indexer raised, kept beside the detections. Filter by rule "
    "and time; page with `cursor` (the `next_cursor` of the previous page).",
)
async def alert_history(
    _user: CurrentUser,
    services: Services,
    rule: Annotated[UUID | None, Query(description="Only alerts of this rule")] = None,
    since: Annotated[Moment | None, Query(description="Detected at or after")] = None,
    until: Annotated[Moment | None, Query(description="Detected before")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AlertPage:
    after = decode_cursor(cursor) if cursor else None
    items = await services.detections.alerts(
        AlertFilter(rule=rule, since=since, until=until), limit=limit, after=after
    )
    next_cursor = None
    if len(items) == limit:
        last = items[-1].detection
        next_cursor = encode_cursor(Position(last.timestamp, last.id))
    return AlertPage(
        items=[AlertOut.of_alert(item) for item in items], limit=limit, next_cursor=next_cursor
    )
