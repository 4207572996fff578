"""Webhook subscriptions, the deliveries waiting for a retry, and every attempt made.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, UUID

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE SEQUENCE webhook_versions")
    op.create_table(
        "webhooks",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("url", sa.Text, nullable=False),
        # Null: every alert.
        sa.Column("rule_ids", ARRAY(UUID(as_uuid=True))),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("previous_secret", sa.Text),
        sa.Column("previous_secret_until", sa.DateTime(timezone=True)),
        sa.Column("created_by", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        # Moves on at every change a deliverer must see; health updates leave it.
        sa.Column(
            "version",
            sa.BigInteger,
            nullable=False,
            server_default=sa.text("nextval('webhook_versions')"),
        ),
        sa.Column("failing_since", sa.DateTime(timezone=True)),
        sa.Column("last_success_at", sa.DateTime(timezone=True)),
        sa.Column("last_failure_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
    )
    op.create_table(
        "webhook_deliveries",
        # The message id: the same at every attempt.
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "webhook_id",
            UUID(as_uuid=True),
            sa.ForeignKey("webhooks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        # pending, delivered or failed
        sa.Column("state", sa.Text, nullable=False),
        # Also a lease: a deliverer that takes a delivery moves it ahead by its timeout.
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.execute(
        "CREATE INDEX ix_webhook_deliveries_due ON webhook_deliveries "
        "(webhook_id, next_attempt_at) WHERE state = 'pending'"
    )
    op.create_index("ix_webhook_deliveries_updated", "webhook_deliveries", ["updated_at"])
    op.create_table(
        "webhook_attempts",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("delivery_id", UUID(as_uuid=True), nullable=False),
        sa.Column(
            "webhook_id",
            UUID(as_uuid=True),
            sa.ForeignKey("webhooks.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
        # delivered, retry or failed
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("status", sa.Integer),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index(
        "ix_webhook_attempts_page", "webhook_attempts", ["webhook_id", "attempted_at", "id"]
    )
    op.create_index("ix_webhook_attempts_delivery", "webhook_attempts", ["delivery_id"])
    op.create_index("ix_webhook_attempts_time", "webhook_attempts", ["attempted_at"])


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.execute("DROP SEQUENCE webhook_versions")
