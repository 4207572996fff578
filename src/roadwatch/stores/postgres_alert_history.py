"""The alert history in PostgreSQL, as a query: newest first, by time and by rule."""

from typing import Any
from uuid import UUID

import sqlalchemy as sa

from roadwatch.domain import Alert, RuleRef
from roadwatch.stores.detection_store import AlertFilter, Position
from roadwatch.stores.postgres_rows import detection_of
from roadwatch.stores.postgres_tables import alert_rules
from roadwatch.stores.postgres_tables import alerts as alerts_table


def history_query(where: AlertFilter, *, limit: int, after: Position | None) -> sa.Select[Any]:
    if where.rule is None:
        alerts = alerts_table.c
        return _newest(sa.select(alerts_table), (alerts.timestamp, alerts.id), where, limit, after)
    # The page is taken from the rule's own rows first, then its alerts are looked up: as one
    # join, the planner, once it has statistics, joined the rule's every alert (12,500 of
    # 1,000,000) to sort them, or every alert when continuing from a cursor (100-250 ms).
    keys = sa.select(alert_rules.c.timestamp, alert_rules.c.alert_id.label("id")).where(
        alert_rules.c.rule_id == where.rule
    )
    order = (alert_rules.c.timestamp, alert_rules.c.alert_id)
    page = _newest(keys, order, where, limit, after).subquery("page")
    return (
        sa.select(alerts_table)
        # By the alerts' key, time and id: the id alone is no key of a partitioned table.
        .join(
            page,
            sa.and_(alerts_table.c.timestamp == page.c.timestamp, alerts_table.c.id == page.c.id),
        )
        .order_by(page.c.timestamp.desc(), page.c.id.desc())
    )


def _newest(
    query: sa.Select[Any],
    order: tuple[sa.ColumnElement[Any], sa.ColumnElement[Any]],
    where: AlertFilter,
    limit: int,
    after: Position | None,
) -> sa.Select[Any]:
    """`query` newest first by `order` (a time and an id), within `where`'s times and after
    the cursor."""
    timestamp, id_ = order
    if where.since is not None:
        query = query.where(timestamp >= where.since)
    if where.until is not None:
        query = query.where(timestamp < where.until)
    if after is not None:
        query = query.where(
            sa.tuple_(timestamp, id_) < sa.tuple_(sa.literal(after.timestamp), sa.literal(after.id))
        )
    return query.order_by(timestamp.desc(), id_.desc()).limit(limit)


def alert_of(row: Any) -> Alert:
    return Alert(detection_of(row), tuple(RuleRef(UUID(r["id"]), r["name"]) for r in row["rules"]))
