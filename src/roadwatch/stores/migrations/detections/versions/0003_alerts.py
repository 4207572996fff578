"""The alert history: every alert the indexer raised, newest first, and by rule.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        # The detection's id: an alert is raised once per detection.
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("year", sa.SmallInteger, nullable=False),
        sa.Column("make", sa.Text, nullable=False),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("category", sa.Text, nullable=False),
        sa.Column("source_topic", sa.Text, nullable=False),
        sa.Column("source_partition", sa.Integer, nullable=False),
        sa.Column("source_offset", sa.BigInteger, nullable=False),
        # [{"id": …, "name": …}] of every rule matched, as the alert named them.
        sa.Column("rules", JSONB, nullable=False),
    )
    op.execute('CREATE INDEX ix_alerts_newest ON alerts ("timestamp" DESC, id DESC)')
    # One row per rule an alert matched: the history of one rule, newest first, by index.
    op.create_table(
        "alert_rules",
        sa.Column("rule_id", UUID(as_uuid=True), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("alert_id", UUID(as_uuid=True), nullable=False),
        sa.PrimaryKeyConstraint("rule_id", "timestamp", "alert_id"),
    )


def downgrade() -> None:
    op.drop_table("alert_rules")
    op.drop_table("alerts")
