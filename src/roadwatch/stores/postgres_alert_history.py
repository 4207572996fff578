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
    # By rule, the rule's own rows give the order; otherwise the alerts' index does.
    if where.rule is None:
        order = (alerts_table.c.timestamp, alerts_table.c.id)
        query = sa.select(alerts_table)
    else:
        order = (alert_rules.c.timestamp, alert_rules.c.alert_id)
        query = (
            sa.select(alerts_table)
            # By the alerts' key, time and id: the id alone is no key of a partitioned table.
            .join(
                alert_rules,
                sa.and_(
                    alert_rules.c.timestamp == alerts_table.c.timestamp,
                    alert_rules.c.alert_id == alerts_table.c.id,
                ),
            )
            .where(alert_rules.c.rule_id == where.rule)
        )
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
