from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from roadwatch.api.cursors import decode_cursor, encode_cursor
from roadwatch.api.deps import Administrator, Services
from roadwatch.api.errors import WebhookNotFound, responses
from roadwatch.api.json_request import JsonTextRoute
from roadwatch.api.webhook_schemas import (
    AttemptOut,
    AttemptPage,
    SecretOut,
    TestQueued,
    WebhookChange,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
)
from roadwatch.stores.detection_store import Position
from roadwatch.webhooks.store import Health

router = APIRouter(tags=["webhooks"], route_class=JsonTextRoute)

SIGNED = (
    "Each alert is POSTed as JSON, signed per Standard Webhooks (`webhook-id`, "
    "`webhook-timestamp`, `webhook-signature`), and retried with backoff for a day if it fails."
)


@router.get(
    "/webhooks",
    responses=responses(401, 403, 503),
    summary="Webhook subscriptions, with their health (administrators)",
)
async def list_webhooks(_admin: Administrator, services: Services) -> list[WebhookOut]:
    return [WebhookOut.of(*found) for found in await services.webhooks.page()]


@router.post(
    "/webhooks",
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 401, 403, 409, 422, 503),
    summary="Subscribe an endpoint to alerts (administrators)",
    description=f"{SIGNED} The signing secret is in the answer, and only there. A URL whose "
    "host resolves to a loopback, private, link-local or metadata address is refused unless "
    "WEBHOOK_ALLOWED_NETWORKS names it. Alerts published from now on are delivered.",
)
async def create_webhook(
    body: WebhookCreate, admin: Administrator, services: Services
) -> WebhookCreated:
    webhook = await services.webhooks.create(
        url=body.url,
        rule_ids=None if body.rules is None else frozenset(body.rules),
        description=body.description,
        enabled=body.enabled,
        by=admin.username,
    )
    shown = WebhookOut.of(webhook, Health(None, None, None, None, 0))
    return WebhookCreated(**shown.model_dump(), secret=webhook.secret)


@router.get(
    "/webhooks/{webhook_id}",
    responses=responses(401, 403, 404, 422, 503),
    summary="One subscription (administrators)",
)
async def get_webhook(webhook_id: UUID, _admin: Administrator, services: Services) -> WebhookOut:
    found = await services.webhooks.get(webhook_id)
    if found is None:
        raise WebhookNotFound
    return WebhookOut.of(*found)


@router.patch(
    "/webhooks/{webhook_id}",
    responses=responses(400, 401, 403, 404, 422, 503),
    summary="Change a subscription (administrators)",
    description="Only the fields given change. Takes effect with the next alert read.",
)
async def change_webhook(
    webhook_id: UUID, body: WebhookChange, _admin: Administrator, services: Services
) -> WebhookOut:
    if not await services.webhooks.update(webhook_id, body.changes()):
        raise WebhookNotFound
    return await get_webhook(webhook_id, _admin, services)


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 422, 503),
    summary="Remove a subscription and its pending deliveries (administrators)",
)
async def delete_webhook(webhook_id: UUID, _admin: Administrator, services: Services) -> Response:
    if not await services.webhooks.delete(webhook_id):
        raise WebhookNotFound
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/webhooks/{webhook_id}/secret",
    responses=responses(401, 403, 404, 422, 503),
    summary="Rotate the signing secret (administrators)",
    description="Deliveries are signed with the new secret and, for WEBHOOK_SECRET_OVERLAP "
    "seconds (a day by default), with the old one as well: a receiver switches over in "
    "that time without refusing a delivery.",
)
async def rotate_secret(webhook_id: UUID, _admin: Administrator, services: Services) -> SecretOut:
    secret = await services.webhooks.rotate_secret(webhook_id)
    if secret is None:
        raise WebhookNotFound
    until = datetime.now(UTC) + timedelta(seconds=services.webhooks.secret_overlap)
    return SecretOut(secret=secret, previous_secret_until=until)


@router.post(
    "/webhooks/{webhook_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    responses=responses(401, 403, 404, 422, 503),
    summary="Send a test event (administrators)",
    description="A `webhook.test` event, delivered within a second or so by a running "
    "deliverer; its attempts appear under /deliveries.",
)
async def send_test(webhook_id: UUID, _admin: Administrator, services: Services) -> TestQueued:
    queued = await services.webhooks.send_test(webhook_id)
    if queued is None:
        raise WebhookNotFound
    return TestQueued(delivery_id=queued)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    responses=responses(401, 403, 404, 422, 503),
    summary="Every delivery attempt, newest first (administrators)",
)
async def deliveries(
    webhook_id: UUID,
    _admin: Administrator,
    services: Services,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> AttemptPage:
    if await services.webhooks.get(webhook_id) is None:
        raise WebhookNotFound
    before = None
    if cursor is not None:
        position = decode_cursor(cursor)
        before = (position.timestamp, position.id)
    rows = await services.webhooks.attempts(webhook_id, limit=limit, before=before)
    items = [AttemptOut(**row) for row in rows]
    last = items[-1] if len(items) == limit else None
    return AttemptPage(
        items=items,
        next=None if last is None else encode_cursor(Position(last.attempted_at, last.id)),
    )
