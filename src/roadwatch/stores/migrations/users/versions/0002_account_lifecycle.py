"""Usernames unique whatever their case; users that can be disabled; a credentials version,
which every change of a user's password or access moves on, so that older tokens stop working.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    clashes = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT string_agg(username, ', ') FROM users GROUP BY lower(username) "
                "HAVING count(*) > 1"
            )
        )
        .scalars()
        .all()
    )
    if clashes:
        raise RuntimeError(
            "usernames now differ by more than case, and these clash: "
            + "; ".join(clashes)
            + ". Rename or delete all but one of each, then migrate again."
        )
    op.execute("CREATE UNIQUE INDEX uq_users_username_folded ON users (lower(username))")
    op.add_column(
        "users", sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false())
    )
    op.add_column(
        "users",
        sa.Column("credentials_version", sa.Integer, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_column("users", "credentials_version")
    op.drop_column("users", "disabled")
    op.drop_index("uq_users_username_folded", table_name="users")
