"""A new day's partitions are attached, so that making them never waits for readers.

`CREATE TABLE … PARTITION OF` locks the parent table ACCESS EXCLUSIVE: it waits for every
query that reads it, and every query after it waits in turn. A stream that reached many
new days held `/detections` for seconds. Each partition is now made on its own and then
attached, which locks the parent SHARE UPDATE EXCLUSIVE only (PostgreSQL 12 on): readers
and savers go on. The new table is empty, so attaching it checks no row; the parent's
indexes are made on it as it is attached.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

CREATE_DAYS = """
CREATE OR REPLACE FUNCTION roadwatch_create_days(days date[]) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '5s'
AS $$
DECLARE
    day date;
    parent text;
    partition text;
BEGIN
    -- One creator at a time: two savers wanting one new day must not race to create it.
    PERFORM pg_advisory_xact_lock(125822700879873);
    FOREACH day IN ARRAY days LOOP
        FOREACH parent IN ARRAY ARRAY['detections', 'alerts', 'alert_rules', 'time_counts']
        LOOP
            partition := parent || '_p' || to_char(day, 'YYYYMMDD');
            CONTINUE WHEN to_regclass(partition) IS NOT NULL;
            {make}
        END LOOP;
    END LOOP;
END
$$
"""
# The day's bounds, as the format() arguments that follow the table names.
DAY = "day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC'"
ATTACH = f"""
            EXECUTE format(
                'CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                partition, parent
            );
            EXECUTE format(
                'ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                parent, partition, {DAY}
            );"""
# What 0004 made: the partition made as one, holding the parent locked from its readers.
PARTITION_OF = f"""
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                partition, parent, {DAY}
            );"""


def upgrade() -> None:
    op.execute(CREATE_DAYS.replace("{make}", ATTACH))


def downgrade() -> None:
    op.execute(CREATE_DAYS.replace("{make}", PARTITION_OF))
