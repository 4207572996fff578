"""What an alert record asks of the deliverer: one delivery to each subscription that wants
it, or the reason the record is no alert. Pure: no I/O."""

from collections.abc import Iterable
from datetime import UTC, datetime

import orjson

from roadwatch.alerts import NotAnAlert, read_alert
from roadwatch.kafka.types import Record
from roadwatch.webhooks.subscriptions import ALERT_EVENT, Delivery, Webhook, delivery_id, event_body


def deliveries_of(record: Record, webhooks: Iterable[Webhook]) -> list[Delivery] | str:
    """The deliveries an alert makes to those of `webhooks` that want it, or why the record
    is not an alert."""
    try:
        alert = read_alert(record.value)
        published = published_at(record.timestamp)
    except NotAnAlert as error:
        return f"not an alert: {error}"
    except (OverflowError, OSError, ValueError) as error:
        return f"not an alert: its timestamp {record.timestamp}: {error}"
    wanted = [webhook for webhook in webhooks if webhook.wants(alert.rule_ids, published)]
    if not wanted:
        return []
    body = event_body(ALERT_EVENT, alert.id, published, orjson.Fragment(alert.text))
    now = datetime.now(UTC)
    return [
        Delivery(
            id=delivery_id(webhook.id, alert.id),
            webhook_id=webhook.id,
            body=body,
            created_at=now,
            published_at=published,
        )
        for webhook in wanted
    ]


def published_at(timestamp: int) -> datetime:
    """When a record was published; a record without a timestamp (-1) counts as now."""
    if timestamp < 0:
        return datetime.now(UTC)
    return datetime.fromtimestamp(timestamp / 1000, UTC)
