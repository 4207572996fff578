"""The PostgreSQL detection tables as SQLAlchemy sees them (migrations create them)."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

metadata = sa.MetaData()

detections = sa.Table(
    "detections",
    metadata,
    sa.Column("id", UUID(as_uuid=True), primary_key=True),
    sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
    sa.Column("year", sa.SmallInteger, nullable=False),
    sa.Column("make", sa.Text, nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("category", sa.Text, nullable=False),
    sa.Column("source_topic", sa.Text, nullable=False),
    sa.Column("source_partition", sa.Integer, nullable=False),
    sa.Column("source_offset", sa.BigInteger, nullable=False),
)

make_counts = sa.Table(
    "make_counts",
    metadata,
    sa.Column("make", sa.Text, primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
)
