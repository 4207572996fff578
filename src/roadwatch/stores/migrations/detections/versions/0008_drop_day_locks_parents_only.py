"""roadwatch_drop_day locks the parent tables only, not every day's partition.

`LOCK TABLE detections` locks each of its partitions too. Autovacuum holds a lock on a
partition it vacuums or analyzes (a recent day, busy with inserts), and the drop's request
waited for it until PostgreSQL cancelled the worker, after deadlock_timeout (1 s), with
every reader queued behind the request: in a `make bench` run on 2026-12-06 the drop took
2.7 s and a `/stats` asked meanwhile 1.45 s. Every reader and saver goes through the
parents, so locking the parents alone (ONLY) keeps them out as before; the day's own
partitions are locked by their DROP.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

DROP_DAY = """
CREATE OR REPLACE FUNCTION roadwatch_drop_day(day date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '5s'
AS $$
DECLARE
    parent text;
BEGIN
    LOCK TABLE {only}detections, {only}alerts, {only}alert_rules, {only}time_counts
        IN ACCESS EXCLUSIVE MODE;
    UPDATE make_counts m SET count = m.count - c.count
    FROM time_counts c
    WHERE c.bucket = 'day' AND c.dimension = 'make' AND m.make = c.key
      AND c.start = day::timestamp AT TIME ZONE 'UTC';
    FOREACH parent IN ARRAY ARRAY['detections', 'alerts', 'alert_rules', 'time_counts'] LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', parent || '_p' || to_char(day, 'YYYYMMDD'));
    END LOOP;
END
$$
"""


def upgrade() -> None:
    op.execute(DROP_DAY.replace("{only}", "ONLY "))


def downgrade() -> None:
    op.execute(DROP_DAY.replace("{only}", ""))
