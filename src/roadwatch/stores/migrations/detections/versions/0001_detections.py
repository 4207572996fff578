"""The detections table, its listing indexes, and the per-make counts kept beside it.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "detections",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("year", sa.SmallInteger, nullable=False),
        sa.Column("make", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("source_topic", sa.Text, nullable=False),
        sa.Column("source_partition", sa.Integer, nullable=False),
        sa.Column("source_offset", sa.BigInteger, nullable=False),
        sa.Column(
            "indexed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    # Newest first, ties by id: the order every listing uses, alone or after one equality.
    op.execute('CREATE INDEX ix_detections_newest ON detections ("timestamp" DESC, id DESC)')
    for column in ("make", "category", "year"):
        op.execute(
            f"CREATE INDEX ix_detections_{column}_newest "
            f'ON detections ({column}, "timestamp" DESC, id DESC)'
        )
    op.create_table(
        "make_counts",
        sa.Column("make", sa.Text, primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("make_counts")
    op.drop_table("detections")
