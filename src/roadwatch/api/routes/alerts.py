from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header
from sse_starlette import EventSourceResponse, ServerSentEvent

from roadwatch.api.alerts_feed import ClientTooSlow, decode_position
from roadwatch.api.deps import CurrentUser, Services
from roadwatch.api.errors import responses

router = APIRouter(tags=["alerts"])

KEEP_ALIVE_SECONDS = 15


@router.get(
    "/alerts",
    responses={200: {"content": {"text/event-stream": {}}}, **responses(401, 422)},
    response_class=EventSourceResponse,
    summary="Suspicious-vehicle alerts, live (Server-Sent Events)",
    description="Each `alert` event carries an alert as JSON and an `id`; reconnect with "
    "`Last-Event-ID` to receive exactly what was missed. A client that falls too far behind "
    "gets a `dropped` event and is disconnected.",
)
async def alerts(
    user: CurrentUser,
    services: Services,
    last_event_id: Annotated[str | None, Header(max_length=4000)] = None,
) -> EventSourceResponse:
    if last_event_id:
        decode_position(last_event_id)

    async def stream() -> AsyncIterator[ServerSentEvent]:
        try:
            async for event in services.alerts.events(last_event_id):
                yield ServerSentEvent(data=event.data, id=event.id, event="alert")
        except ClientTooSlow:
            services.metrics.sse_dropped.inc()
            yield ServerSentEvent(
                event="dropped",
                data='{"detail": "too far behind; reconnect with Last-Event-ID to resume"}',
            )

    return EventSourceResponse(stream(), ping=KEEP_ALIVE_SECONDS)
