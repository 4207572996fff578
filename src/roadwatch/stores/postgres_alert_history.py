"""The alert history in PostgreSQL, as a query: newest first, by time and by rule.

Read straight through asyncpg (stores/driver_pool.py), as a page of detections is: through
SQLAlchemy each page cost a pre-ping round trip and the engine's Python around the statement.
"""

from typing import Any

import asyncpg

from roadwatch.domain import Alert
from roadwatch.stores.detection_store import AlertFilter, Position
from roadwatch.stores.postgres_rows import detection_of
from roadwatch.stores.postgres_statements import FilterQuery
from roadwatch.stores.rule_refs import rules_in_json

# The columns detection_of reads, then the rules as JSON text.
_ALERT_COLUMNS = (
    'a.id, a."timestamp", a.year, a.make, a.model, a.category, '
    "a.source_topic, a.source_partition, a.source_offset, a.rules::text"
)


def history_query(
    where: AlertFilter, *, limit: int, after: Position | None
) -> tuple[str, list[Any]]:
    """The page's statement and its arguments ($1, $2…)."""
    query = FilterQuery()
    if where.rule is None:
        conditions = query.where([], since=where.since, until=where.until, after=after)
        # Column names and placeholders only: the values travel as arguments.
        sql = (
            f"SELECT {_ALERT_COLUMNS} FROM alerts AS a{conditions}"  # noqa: S608
            f' ORDER BY a."timestamp" DESC, a.id DESC LIMIT {query.arg(limit)}'
        )
        return sql, query.args
    # The page is taken from the rule's own rows first, then each of its alerts is looked up
    # by key. As one join, the planner, once it had statistics, joined the rule's every alert
    # (12,500 of 1,000,000) to sort them. With the page first but a plain join, it costed a
    # lookup in every day's table for each row of the page, and past a few days' tables hashed
    # every alert instead: 20 ms a page at 100,000 alerts over 90 days, growing with the
    # history. A lateral subquery with a LIMIT is not flattened into a join, so each row can
    # only be looked up, and only in its own day's table (pruned as the statement runs).
    rule = f"rule_id = {query.arg(where.rule)}"
    conditions = query.where(
        [rule], since=where.since, until=where.until, after=after, id_column="alert_id"
    )
    # The window's bounds again, on the alerts looked up, so that only its days' tables are
    # planned and opened for the lookups, not every day's.
    lookup = query.where(
        ['alerts."timestamp" = page."timestamp"', "alerts.id = page.alert_id"],
        since=where.since,
        until=where.until,
        after=None,
    )
    sql = (
        f'SELECT {_ALERT_COLUMNS} FROM (SELECT "timestamp", alert_id FROM alert_rules'  # noqa: S608
        f'{conditions} ORDER BY "timestamp" DESC, alert_id DESC LIMIT {query.arg(limit)})'
        # By the alerts' key, time and id: the id alone is no key of a partitioned table.
        f" AS page CROSS JOIN LATERAL (SELECT * FROM alerts{lookup} LIMIT 1) AS a"
        ' ORDER BY page."timestamp" DESC, page.alert_id DESC'
    )
    return sql, query.args


def alert_of(row: asyncpg.Record) -> Alert:
    return Alert(
        detection_of(row),
        rules_in_json(row[9]),
    )
