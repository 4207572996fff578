"""Detections by model, newest first: the one filter of /detections that had no index, and
so scanned the table.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        'CREATE INDEX ix_detections_model_newest ON detections (model, "timestamp" DESC, id DESC)'
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_detections_model_newest")
