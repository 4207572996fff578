"""Partitions by day, and counts over time.

The detections, the alerts and their rule rows become range-partitioned by UTC day on their
time, so that retention drops whole days. Their primary keys take the time in, as a
partition key must be in them; a replayed record carries the same time and id, so writes
stay idempotent. `time_counts` holds detections per minute, hour and day, by make and by
category, and alerts by rule; it is partitioned the same way, so that a day's counts go
with its detections. `detection_ids` keeps each id once across all days, as the partitions'
keys cannot.

Existing rows are carried over, and their counts computed. This rewrites the tables, holding
them locked: 26.5 s per million detections (spread over 30 days, a quarter with alerts) on
the 2-core machine of docs/benchmarks.md.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DETECTION_COLUMNS = """
    id uuid NOT NULL,
    "timestamp" timestamptz NOT NULL,
    year smallint NOT NULL,
    make text NOT NULL,
    model text NOT NULL,
    category text NOT NULL,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL"""

PARTITIONED_TABLES = {
    "detections": f"""
        CREATE TABLE detections ({DETECTION_COLUMNS},
            indexed_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY ("timestamp", id)
        ) PARTITION BY RANGE ("timestamp")""",
    "alerts": f"""
        CREATE TABLE alerts ({DETECTION_COLUMNS},
            rules jsonb NOT NULL,
            PRIMARY KEY ("timestamp", id)
        ) PARTITION BY RANGE ("timestamp")""",
    "alert_rules": """
        CREATE TABLE alert_rules (
            rule_id uuid NOT NULL,
            "timestamp" timestamptz NOT NULL,
            alert_id uuid NOT NULL,
            PRIMARY KEY (rule_id, "timestamp", alert_id)
        ) PARTITION BY RANGE ("timestamp")""",
    "time_counts": """
        CREATE TABLE time_counts (
            bucket text NOT NULL,
            dimension text NOT NULL,
            start timestamptz NOT NULL,
            key text NOT NULL,
            count bigint NOT NULL,
            PRIMARY KEY (bucket, dimension, start, key)
        ) PARTITION BY RANGE (start)""",
}
CARRIED_OVER = ("detections", "alerts", "alert_rules")
# Every stored id, once, across all days: what keeps an id from being stored twice at two
# times. Narrow; a day's ids are found for removal through the day's partition.
DETECTION_IDS = [
    'CREATE TABLE detection_ids (id uuid PRIMARY KEY, "timestamp" timestamptz NOT NULL)',
    'INSERT INTO detection_ids SELECT id, "timestamp" FROM detections_unpartitioned',
]
# The primary key, read backwards, gives the newest-first order without an index of its own.
INDEXES = [
    *(
        f'CREATE INDEX ix_detections_{column}_newest ON detections ({column}, "timestamp" DESC, '
        "id DESC)"
        for column in ("make", "model", "category", "year")
    ),
]
OLD_INDEXES = [
    "ix_detections_newest",
    "ix_detections_make_newest",
    "ix_detections_model_newest",
    "ix_detections_category_newest",
    "ix_detections_year_newest",
    "ix_alerts_newest",
]
# The application's role may neither create nor drop tables: it keeps its days through these
# two functions, which run as their owner, and which only it is granted (`roadwatch infra`
# grants EXECUTE on the owner's functions to the application role).
DAY_FUNCTIONS = [
    """
    CREATE FUNCTION roadwatch_create_days(days date[]) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '5s'
    AS $$
    DECLARE
        day date;
        parent text;
    BEGIN
        -- One creator at a time: two savers wanting one new day must not race to create it.
        PERFORM pg_advisory_xact_lock(125822700879873);
        FOREACH day IN ARRAY days LOOP
            FOREACH parent IN ARRAY ARRAY['detections', 'alerts', 'alert_rules', 'time_counts']
            LOOP
                EXECUTE format(
                    'CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                    parent || '_p' || to_char(day, 'YYYYMMDD'),
                    parent,
                    day::timestamp AT TIME ZONE 'UTC',
                    (day + 1)::timestamp AT TIME ZONE 'UTC'
                );
            END LOOP;
        END LOOP;
    END
    $$""",
    # The per-make counts lose exactly what the day held (its per-day counts, kept with it),
    # in the transaction that drops it: a reader sees the day whole or not at all. Every
    # table is locked before any count row, so that a save holding a table and wanting a
    # count row cannot deadlock with this.
    """
    CREATE FUNCTION roadwatch_drop_day(day date) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '5s'
    AS $$
    DECLARE
        parent text;
    BEGIN
        -- The day's ids first, row by row, before any table is locked: readers and savers
        -- go on meanwhile, and wait only for the drop itself.
        IF to_regclass('detections_p' || to_char(day, 'YYYYMMDD')) IS NOT NULL THEN
            EXECUTE format(
                'DELETE FROM detection_ids k USING %I d WHERE k.id = d.id',
                'detections_p' || to_char(day, 'YYYYMMDD')
            );
        END IF;
        LOCK TABLE detections, alerts, alert_rules, time_counts IN ACCESS EXCLUSIVE MODE;
        UPDATE make_counts m SET count = m.count - c.count
        FROM time_counts c
        WHERE c.bucket = 'day' AND c.dimension = 'make' AND m.make = c.key
          AND c.start = day::timestamp AT TIME ZONE 'UTC';
        FOREACH parent IN ARRAY ARRAY['detections', 'alerts', 'alert_rules', 'time_counts'] LOOP
            EXECUTE format('DROP TABLE IF EXISTS %I', parent || '_p' || to_char(day, 'YYYYMMDD'));
        END LOOP;
    END
    $$""",
    "REVOKE EXECUTE ON FUNCTION roadwatch_create_days(date[]), roadwatch_drop_day(date) "
    "FROM PUBLIC",
]
CREATE_DAYS_HELD = """
SELECT roadwatch_create_days(ARRAY(
    SELECT ("timestamp" AT TIME ZONE 'UTC')::date FROM detections_unpartitioned
    UNION SELECT ("timestamp" AT TIME ZONE 'UTC')::date FROM alerts_unpartitioned
))
"""
COUNT_DETECTIONS = """
INSERT INTO time_counts (bucket, dimension, start, key, count)
SELECT b.bucket, k.dimension, date_trunc(b.bucket, m.minute, 'UTC'), k.key, sum(m.n)
FROM (
    SELECT date_trunc('minute', "timestamp", 'UTC') AS minute, make, category, count(*) AS n
    FROM detections GROUP BY 1, 2, 3
) AS m
CROSS JOIN (VALUES ('minute'), ('hour'), ('day')) AS b(bucket)
CROSS JOIN LATERAL (VALUES ('make', m.make), ('category', m.category)) AS k(dimension, key)
GROUP BY 1, 2, 3, 4
"""
COUNT_ALERTS = """
INSERT INTO time_counts (bucket, dimension, start, key, count)
SELECT b.bucket, k.dimension, date_trunc(b.bucket, a."timestamp", 'UTC'), k.key, count(*)
FROM (
    SELECT "timestamp", 'alerts' AS dimension, 'all' AS key FROM alerts
    UNION ALL
    SELECT "timestamp", 'rule', rule_id::text FROM alert_rules
) AS a(timestamp, dimension, key)
CROSS JOIN (VALUES ('minute'), ('hour'), ('day')) AS b(bucket)
CROSS JOIN LATERAL (VALUES (a.dimension, a.key)) AS k(dimension, key)
GROUP BY 1, 2, 3, 4
"""


def upgrade() -> None:
    for index in OLD_INDEXES:
        op.execute(f"DROP INDEX {index}")
    for table in CARRIED_OVER:
        op.execute(f"ALTER TABLE {table} RENAME TO {table}_unpartitioned")
        op.execute(
            f"ALTER TABLE {table}_unpartitioned RENAME CONSTRAINT {table}_pkey TO {table}_old_pkey"
        )
    for create in PARTITIONED_TABLES.values():
        op.execute(create)
    for index in INDEXES:
        op.execute(index)
    for statement in DAY_FUNCTIONS + DETECTION_IDS:
        op.execute(statement)
    op.execute(CREATE_DAYS_HELD)
    for table in CARRIED_OVER:
        op.execute(f"INSERT INTO {table} SELECT * FROM {table}_unpartitioned")  # noqa: S608
        op.execute(f"DROP TABLE {table}_unpartitioned")
    op.execute(COUNT_DETECTIONS)
    op.execute(COUNT_ALERTS)


def downgrade() -> None:
    op.execute("DROP FUNCTION roadwatch_create_days(date[]), roadwatch_drop_day(date)")
    for table in CARRIED_OVER:
        op.execute(f"ALTER TABLE {table} RENAME TO {table}_partitioned")
    op.execute(
        f"CREATE TABLE detections ({DETECTION_COLUMNS}, indexed_at timestamptz NOT NULL "
        "DEFAULT now(), PRIMARY KEY (id))"
    )
    op.execute(f"CREATE TABLE alerts ({DETECTION_COLUMNS}, rules jsonb NOT NULL, PRIMARY KEY (id))")
    op.execute(
        'CREATE TABLE alert_rules (rule_id uuid NOT NULL, "timestamp" timestamptz NOT NULL, '
        'alert_id uuid NOT NULL, PRIMARY KEY (rule_id, "timestamp", alert_id))'
    )
    for table in CARRIED_OVER:
        op.execute(f"INSERT INTO {table} SELECT * FROM {table}_partitioned")  # noqa: S608
        op.execute(f"DROP TABLE {table}_partitioned")
    op.execute("DROP TABLE time_counts, detection_ids")
    for index in OLD_INDEXES:
        table = "alerts" if index.startswith("ix_alerts") else "detections"
        column = index.removeprefix(f"ix_{table}_").removesuffix("newest").rstrip("_")
        leading = f"{column}, " if column else ""
        op.execute(f'CREATE INDEX {index} ON {table} ({leading}"timestamp" DESC, id DESC)')
