"""The listing indexes hold a column and the time, ascending, without the id.

Each of the four (`make`, `model`, `category`, `year`) was (column, time DESC, id DESC). A
new detection is the newest of its value, so it went in first of its range: never at the
end of a page, where PostgreSQL splits a page unevenly and leaves it full. Pages split in
half and stayed half full, and every fortieth insert or so logged a split. Ascending, a new
entry goes in last of its range; without the id it is 16 bytes smaller. A listing reads the
index backwards, newest first, and orders detections of the same millisecond by id on top.

At 3,000,000 rows the four took 1,108 MB and 1,059 bytes of write-ahead log a row; now
621 MB and 890 bytes. Rebuilding them on existing rows holds the table locked: 2.4 s per
million detections on the 2-core machine of docs/benchmarks.md.

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS = ("make", "model", "category", "year")


def upgrade() -> None:
    for column in COLUMNS:
        op.execute(f"DROP INDEX ix_detections_{column}_newest")
        op.execute(
            f'CREATE INDEX ix_detections_{column}_time ON detections ({column}, "timestamp")'
        )


def downgrade() -> None:
    for column in COLUMNS:
        op.execute(f"DROP INDEX ix_detections_{column}_time")
        op.execute(
            f"CREATE INDEX ix_detections_{column}_newest "
            f'ON detections ({column}, "timestamp" DESC, id DESC)'
        )
