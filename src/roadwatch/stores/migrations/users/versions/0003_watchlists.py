"""Watchlist rules, and every change made to them: what, by whom, and when.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watchlist_rules",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("categories", ARRAY(sa.Text), nullable=False),
        sa.Column("make", sa.Text),
        sa.Column("model", sa.Text),
        sa.Column("year_from", sa.Integer),
        sa.Column("year_to", sa.Integer),
        sa.Column("created_by", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Text),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("year_from IS NULL OR year_to IS NULL OR year_from <= year_to"),
    )
    op.execute(
        "CREATE UNIQUE INDEX uq_watchlist_rules_name_folded ON watchlist_rules (lower(name))"
    )
    op.create_table(
        "watchlist_changes",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("rule_id", UUID(as_uuid=True), nullable=False),
        # created, updated, deleted, or seeded (at first start, from SUSPICIOUS_VEHICLE)
        sa.Column("change", sa.Text, nullable=False),
        sa.Column("changed_by", sa.Text),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        # The rule as it stood after the change; null once deleted.
        sa.Column("rule", JSONB),
    )
    op.create_index("ix_watchlist_changes_rule", "watchlist_changes", ["rule_id", "changed_at"])


def downgrade() -> None:
    op.drop_table("watchlist_changes")
    op.drop_table("watchlist_rules")
