"""roadwatch_drop_day drops the day, no more: the day's ids are released before it.

Deleting a day's ids from detection_ids took most of a day's removal (about 3 s for
333,000 detections), in the one transaction with the drop. The store now releases them
beforehand in short transactions of its own (postgres_days.release_ids), and the
function keeps only what needs the tables locked: the per-make counts, and the drop.
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

DROP_DAY = """
CREATE OR REPLACE FUNCTION roadwatch_drop_day(day date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '5s'
AS $$
DECLARE
    parent text;
BEGIN
    {release}
    LOCK TABLE detections, alerts, alert_rules, time_counts IN ACCESS EXCLUSIVE MODE;
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
# What 0004's function did first, in its own transaction.
RELEASE_IN_THE_SAME_TRANSACTION = """
    IF to_regclass('detections_p' || to_char(day, 'YYYYMMDD')) IS NOT NULL THEN
        EXECUTE format(
            'DELETE FROM detection_ids k USING %I d WHERE k.id = d.id',
            'detections_p' || to_char(day, 'YYYYMMDD')
        );
    END IF;
"""


def upgrade() -> None:
    op.execute(DROP_DAY.replace("{release}", ""))


def downgrade() -> None:
    op.execute(DROP_DAY.replace("{release}", RELEASE_IN_THE_SAME_TRANSACTION))
