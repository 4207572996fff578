"""The PostgreSQL detection tables as SQLAlchemy sees them (migrations create them)."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = sa.MetaData()


def _detection_columns() -> list[sa.Column[object]]:
    """A detection's columns, new objects each time (a column belongs to one table)."""
    return [
        # Partitioned by day on the time, which the key must then hold.
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("year", sa.SmallInteger, nullable=False),
        sa.Column("make", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("source_topic", sa.Text, nullable=False),
        sa.Column("source_partition", sa.Integer, nullable=False),
        sa.Column("source_offset", sa.BigInteger, nullable=False),
    ]


detections = sa.Table("detections", metadata, *_detection_columns())

make_counts = sa.Table(
    "make_counts",
    metadata,
    sa.Column("make", sa.Text, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)

# An alert is its detection's columns (its id the detection's), and the rules it matched.
alerts = sa.Table(
    "alerts", metadata, *_detection_columns(), sa.Column("rules", JSONB, nullable=False)
)

alert_rules = sa.Table(
    "alert_rules",
    metadata,
    sa.Column("rule_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("timestamp", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("alert_id", UUID(as_uuid=True), primary_key=True),
)
