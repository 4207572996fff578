"""The alert history in PostgreSQL, as a query: newest first, by time and by rule.

Read straight through asyncpg (stores/driver_pool.py), as a page of detections is: through
SQLAlchemy each page cost a pre-ping round trip and the engine's Python around the statement.
"""

from typing import Any
from uuid import UUID

import orjson

from roadwatch.domain import Alert, Detection, RuleRef, Source
from roadwatch.stores.detection_store import AlertFilter, Position
from roadwatch.stores.postgres_statements import FilterQuery

# In the order of Detection's fields, then the rules as JSON text.
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
        conditions = _window(query, where, after, timestamp='"timestamp"', id_="id")
        # Column names and placeholders only: the values travel as arguments.
        sql = (
            f"SELECT {_ALERT_COLUMNS} FROM alerts AS a{conditions}"  # noqa: S608
            f' ORDER BY a."timestamp" DESC, a.id DESC LIMIT {query.arg(limit)}'
        )
        return sql, query.args
    # The page is taken from the rule's own rows first, then its alerts are looked up: as one
    # join, the planner, once it has statistics, joined the rule's every alert (12,500 of
    # 1,000,000) to sort them, or every alert when continuing from a cursor (100-250 ms).
    rule = f"rule_id = {query.arg(where.rule)}"
    conditions = _window(query, where, after, timestamp='"timestamp"', id_="alert_id", also=rule)
    sql = (
        f'SELECT {_ALERT_COLUMNS} FROM (SELECT "timestamp", alert_id FROM alert_rules'  # noqa: S608
        f'{conditions} ORDER BY "timestamp" DESC, alert_id DESC LIMIT {query.arg(limit)})'
        # By the alerts' key, time and id: the id alone is no key of a partitioned table.
        ' AS page JOIN alerts AS a ON a."timestamp" = page."timestamp" AND a.id = page.alert_id'
        ' ORDER BY page."timestamp" DESC, page.alert_id DESC'
    )
    return sql, query.args


def _window(
    query: FilterQuery,
    where: AlertFilter,
    after: Position | None,
    *,
    timestamp: str,
    id_: str,
    also: str | None = None,
) -> str:
    """The WHERE clause: `also`, then `where`'s times, then past the cursor."""
    clauses = [] if also is None else [also]
    if where.since is not None:
        clauses.append(f"{timestamp} >= {query.arg(where.since)}")
    if where.until is not None:
        clauses.append(f"{timestamp} < {query.arg(where.until)}")
    if after is not None:
        at, past = query.arg(after.timestamp), query.arg(after.id)
        clauses.append(f"({timestamp}, {id_}) < ({at}, {past})")
    return " WHERE " + " AND ".join(clauses) if clauses else ""


def alert_of(row: Any) -> Alert:
    id_, at, year, make, model, category, topic, partition, offset, rules = row
    return Alert(
        Detection(id_, at, year, make, model, category, Source(topic, partition, offset)),
        tuple(RuleRef(UUID(rule["id"]), rule["name"]) for rule in orjson.loads(rules)),
    )
