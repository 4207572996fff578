"""The SQL of the PostgreSQL detection store: how a batch goes in, and how filters become
conditions."""

from datetime import datetime
from typing import Any

from roadwatch.stores.detection_store import DetectionFilter, Position
from roadwatch.stores.postgres_time_counts import COUNT_INSERTED, COUNT_INSERTED_ALERTS

# A batch is first copied (COPY, the cheapest way in) into a temporary table of the
# connection's own, created with the connection and emptied at every commit.
COLUMNS = (
    "id",
    "timestamp",
    "year",
    "make",
    "model",
    "category",
    "source_topic",
    "source_partition",
    "source_offset",
)
INCOMING = "incoming_detections"
CREATE_INCOMING = """
CREATE TEMPORARY TABLE IF NOT EXISTS incoming_detections ON COMMIT DELETE ROWS AS
SELECT id, "timestamp", year, make, model, category,
       source_topic, source_partition, source_offset
FROM detections WITH NO DATA
"""
# Large batches of alerts go the same way (stores/postgres_alert_saves.py).
ALERT_COLUMNS = (*COLUMNS, "rules")
INCOMING_ALERTS = "incoming_alerts"
CREATE_INCOMING_ALERTS = """
CREATE TEMPORARY TABLE IF NOT EXISTS incoming_alerts ON COMMIT DELETE ROWS AS
SELECT id, "timestamp", year, make, model, category,
       source_topic, source_partition, source_offset, rules
FROM alerts WITH NO DATA
"""
INCOMING_TABLES = {INCOMING: CREATE_INCOMING, INCOMING_ALERTS: CREATE_INCOMING_ALERTS}

# Then one statement, so one atomic step: each row claims its id, the rows go in, and the
# counts per make and per category grow by exactly those rows. An id is claimed in
# `detection_ids`, one table across all days: the partitions' keys hold the time, and so
# could not keep an id from being stored twice at two times. Makes and categories are
# counted in a fixed order so that two savers never lock the same count rows in opposite
# orders.
#
# A batch is first tried as new rows only, with no ON CONFLICT: a unique index then checks
# each row as it goes in, where ON CONFLICT would look it up beforehand and take a lock on
# it, a fifth of the server's work for a batch. A batch holding an id stored already (a
# replay) fails as a whole, and is saved again by SAVE_INCOMING, which skips such rows.


def _save_incoming(*, skipping_held: bool) -> str:
    """The batch's statement: as new rows only, or skipping the rows whose id is held
    already and those stored already."""
    claim_or_skip, only_claimed = (
        (
            'ON CONFLICT (id) DO NOTHING\n    RETURNING id, "timestamp"',
            'JOIN claimed c ON c.id = i.id AND c."timestamp" = i."timestamp"\n'
            '    ON CONFLICT ("timestamp", id) DO NOTHING',
        )
        if skipping_held
        else ("", "")
    )
    return f"""
WITH claimed AS (
    INSERT INTO detection_ids (id, "timestamp")
    SELECT id, "timestamp" FROM incoming_detections
    {claim_or_skip}
), inserted AS (
    INSERT INTO detections
        (id, "timestamp", year, make, model, category,
         source_topic, source_partition, source_offset)
    SELECT i.id, i."timestamp", year, make, model, category,
           source_topic, source_partition, source_offset
    FROM incoming_detections i
    {only_claimed}
    RETURNING "timestamp", make, category
), counted AS (
    INSERT INTO make_counts (make, count)
    SELECT make, count(*) FROM inserted GROUP BY make ORDER BY make
    ON CONFLICT (make) DO UPDATE SET count = make_counts.count + EXCLUDED.count
), categorised AS (
    INSERT INTO category_counts (category, count)
    SELECT category, count(*) FROM inserted GROUP BY category ORDER BY category
    ON CONFLICT (category) DO UPDATE SET count = category_counts.count + EXCLUDED.count
), {COUNT_INSERTED}
SELECT count(*) FROM inserted
"""  # noqa: S608 (constants only)


SAVE_NEW_INCOMING = _save_incoming(skipping_held=False)
SAVE_INCOMING = _save_incoming(skipping_held=True)

# Run only when some rows were not inserted, as for every replayed batch: which of them
# carry an id that another record holds, and which record that is. A replay of the same
# record is no conflict. Each incoming row looks its id up, and then its holder, by their
# keys: the subqueries' LIMIT keeps the planner from making one join of them, which it
# planned, the tables' sizes misjudged, as a scan of every detection for each incoming row
# (a replayed batch of 10,000 over 300,000 stored took five minutes).
FIND_CONFLICTS = """
SELECT i.source_topic, i.source_partition, i.source_offset,
       d.source_topic, d.source_partition, d.source_offset
FROM incoming_detections i
CROSS JOIN LATERAL (
    SELECT k."timestamp" FROM detection_ids k WHERE k.id = i.id LIMIT 1
) k
CROSS JOIN LATERAL (
    SELECT d.source_topic, d.source_partition, d.source_offset
    FROM detections d WHERE d."timestamp" = k."timestamp" AND d.id = i.id LIMIT 1
) d
WHERE (d.source_topic, d.source_partition, d.source_offset)
      IS DISTINCT FROM (i.source_topic, i.source_partition, i.source_offset)
"""

# The alerts of a batch, and one row per rule each matched, in one statement: as new rows
# first (SAVE_NEW_ALERTS), then, if an alert was kept already (a replay), skipping those,
# which keep their rows as they were. The alerts come as array parameters ($1…$10), or from
# the rows copied into incoming_alerts.
GIVEN_ALERTS = """unnest(
        $1::uuid[], $2::timestamptz[], $3::int2[], $4::text[], $5::text[], $6::text[],
        $7::text[], $8::int4[], $9::int8[], $10::jsonb[])"""


def _save_alerts(*, skipping_kept: bool, source: str) -> str:
    skip = 'ON CONFLICT ("timestamp", id) DO NOTHING' if skipping_kept else ""
    skip_rules = "ON CONFLICT DO NOTHING" if skipping_kept else ""
    return f"""
WITH inserted AS (
    INSERT INTO alerts
        (id, "timestamp", year, make, model, category,
         source_topic, source_partition, source_offset, rules)
    SELECT * FROM {source}
    {skip}
    RETURNING id, "timestamp", rules
), by_rule AS (
    INSERT INTO alert_rules (rule_id, "timestamp", alert_id)
    SELECT (rule ->> 'id')::uuid, inserted."timestamp", inserted.id
    FROM inserted, jsonb_array_elements(inserted.rules) AS rule
    {skip_rules}
), {COUNT_INSERTED_ALERTS}
SELECT count(*) FROM inserted
"""  # noqa: S608 (constants only)


SAVE_NEW_ALERTS = _save_alerts(skipping_kept=False, source=GIVEN_ALERTS)
SAVE_ALERTS = _save_alerts(skipping_kept=True, source=GIVEN_ALERTS)
SAVE_NEW_INCOMING_ALERTS = _save_alerts(skipping_kept=False, source=INCOMING_ALERTS)
SAVE_INCOMING_ALERTS = _save_alerts(skipping_kept=True, source=INCOMING_ALERTS)

# Looked up only for detections of days this process has not made or seen made. Each id by
# its key: as `id = ANY($1)`, a batch of 10,000 ids was a scan of every id stored (156 ms at
# 3,000,000 ids, 33 ms by key), the planner pricing 10,000 probes above one pass.
FIND_HELD_IDS = """
SELECT k.id FROM unnest($1::uuid[]) AS i(id)
CROSS JOIN LATERAL (SELECT id FROM detection_ids k WHERE k.id = i.id LIMIT 1) AS k"""
# PostgreSQL's words for a row whose day has no partition (SQLSTATE 23514, a check).
NO_PARTITION = "no partition of relation"

# In the order of Detection's fields, which the page reads them in.
SELECT_DETECTIONS = """
SELECT id, "timestamp", year, make, model, category, source_topic, source_partition, source_offset
FROM detections"""
COUNTS_BY_MAKE = "SELECT make, count FROM make_counts WHERE count > 0"
COUNTS_BY_CATEGORY = "SELECT category, count FROM category_counts WHERE count > 0"
GROUP_BY_MAKE = "SELECT make, count(*) FROM detections GROUP BY make"


class FilterQuery:
    """The WHERE clause of a read, with its values as numbered arguments ($1, $2…)."""

    def __init__(self) -> None:
        self.args: list[Any] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def conditions(self, where: DetectionFilter, *, after: Position | None = None) -> str:
        clauses = [
            f"{column} = {self.arg(getattr(where, column))}"
            for column in ("make", "model", "category", "year")
            if getattr(where, column) is not None
        ]
        return self.where(clauses, since=where.since, until=where.until, after=after)

    def where(
        self,
        clauses: list[str],
        *,
        since: datetime | None,
        until: datetime | None,
        after: Position | None,
        id_column: str = "id",
    ) -> str:
        """`clauses`, then a window of times and past a cursor (rows newest first by time,
        then by `id_column`), as one WHERE clause; empty if there is nothing to ask."""
        if since is not None:
            clauses.append(f'"timestamp" >= {self.arg(since)}')
        if until is not None:
            clauses.append(f'"timestamp" < {self.arg(until)}')
        if after is not None:
            timestamp, id_ = self.arg(after.timestamp), self.arg(after.id)
            clauses.append(f'("timestamp", {id_column}) < ({timestamp}, {id_})')
        return " WHERE " + " AND ".join(clauses) if clauses else ""
