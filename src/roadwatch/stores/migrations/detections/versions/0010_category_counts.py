"""Detections are counted per category of all time, as they are per make.

A listing filtered by category alone counted its rows up to 10,000, and said no more than
that many: beside a year or two of day partitions, the count was planned over every one of
them, 39 ms at 365 days for each of a connection's first five uses (8 ms after).
`category_counts` is kept by the statement that stores a batch, in the same step, and
uncounted when a day goes, as `make_counts` is; the counts start from the detections held.

Stop the indexers before migrating: one of an older version would store detections without
counting them here.

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

DROP_DAY = """
CREATE OR REPLACE FUNCTION roadwatch_drop_day(day date) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '5s'
AS $$
DECLARE
    parent text;
BEGIN
    LOCK TABLE ONLY detections, ONLY alerts, ONLY alert_rules, ONLY time_counts
        IN ACCESS EXCLUSIVE MODE;
    UPDATE make_counts m SET count = m.count - c.count
    FROM time_counts c
    WHERE c.bucket = 'day' AND c.dimension = 'make' AND m.make = c.key
      AND c.start = day::timestamp AT TIME ZONE 'UTC';
    {uncount_categories}
    FOREACH parent IN ARRAY ARRAY['detections', 'alerts', 'alert_rules', 'time_counts'] LOOP
        EXECUTE format('DROP TABLE IF EXISTS %I', parent || '_p' || to_char(day, 'YYYYMMDD'));
    END LOOP;
END
$$
"""
UNCOUNT_CATEGORIES = """UPDATE category_counts m SET count = m.count - c.count
    FROM time_counts c
    WHERE c.bucket = 'day' AND c.dimension = 'category' AND m.category = c.key
      AND c.start = day::timestamp AT TIME ZONE 'UTC';"""


def upgrade() -> None:
    op.execute("CREATE TABLE category_counts (category text PRIMARY KEY, count bigint NOT NULL)")
    # No detection is stored meanwhile: the counts start from exactly those held.
    op.execute("LOCK TABLE detections IN SHARE MODE")
    op.execute(
        "INSERT INTO category_counts (category, count) "
        "SELECT category, count(*) FROM detections GROUP BY category"
    )
    op.execute(DROP_DAY.replace("{uncount_categories}", UNCOUNT_CATEGORIES))


def downgrade() -> None:
    op.execute(DROP_DAY.replace("{uncount_categories}", ""))
    op.execute("DROP TABLE category_counts")
