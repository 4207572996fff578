"""The webhook tables of the users' database, and the statements both halves of the store
run over them."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

# One lock for every change of subscriptions, so that the bound on their number holds.
WEBHOOK_LOCK = 0x77656268

metadata = sa.MetaData()
webhooks_table = sa.Table(
    "webhooks",
    metadata,
    sa.Column("id", PG_UUID(as_uuid=True), primary_key=True),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("rule_ids", ARRAY(PG_UUID(as_uuid=True))),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("secret", sa.Text, nullable=False),
    sa.Column("previous_secret", sa.Text),
    sa.Column("previous_secret_until", sa.DateTime(timezone=True)),
    sa.Column("created_by", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.Column("failing_since", sa.DateTime(timezone=True)),
    sa.Column("last_success_at", sa.DateTime(timezone=True)),
    sa.Column("last_failure_at", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text),
)
deliveries_table = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", PG_UUID(as_uuid=True), primary_key=True),
    sa.Column("webhook_id", PG_UUID(as_uuid=True), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("state", sa.Text, nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
attempts_table = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column("id", PG_UUID(as_uuid=True), primary_key=True),
    sa.Column("delivery_id", PG_UUID(as_uuid=True), nullable=False),
    sa.Column("webhook_id", PG_UUID(as_uuid=True), nullable=False),
    sa.Column("attempt", sa.Integer, nullable=False),
    sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("status", sa.Integer),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("error", sa.Text),
)
# Batches go as one array a column, unnested by the server: one statement of a few
# parameters whatever the number of rows, and nothing for SQLAlchemy to compile per row.
DELIVERY_COLUMNS = {
    "id": "uuid",
    "webhook_id": "uuid",
    "body": "bytea",
    "created_at": "timestamptz",
    "attempts": "int",
    "state": "text",
    "next_attempt_at": "timestamptz",
    "updated_at": "timestamptz",
}
ATTEMPT_COLUMNS = {
    "id": "uuid",
    "delivery_id": "uuid",
    "webhook_id": "uuid",
    "attempt": "int",
    "attempted_at": "timestamptz",
    "outcome": "text",
    "status": "int",
    "latency_ms": "float8",
    "error": "text",
}


def unnest_insert(table: str, columns: dict[str, str]) -> str:
    names = ", ".join(columns)
    arrays = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in columns.items())
    # The table and column names are roadwatch's own, never input.
    return f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays})"  # noqa: S608


INSERT_DELIVERIES = sa.text(
    unnest_insert("webhook_deliveries", DELIVERY_COLUMNS) + " ON CONFLICT (id) DO NOTHING"
)
UPSERT_DELIVERIES = sa.text(
    unnest_insert("webhook_deliveries", DELIVERY_COLUMNS)
    + " ON CONFLICT (id) DO UPDATE SET attempts = EXCLUDED.attempts, state = EXCLUDED.state,"
    " next_attempt_at = EXCLUDED.next_attempt_at, updated_at = EXCLUDED.updated_at"
)
INSERT_ATTEMPTS = sa.text(unnest_insert("webhook_attempts", ATTEMPT_COLUMNS))
# Each id looked up by its key: as `id = ANY(:ids)`, the planner may price a replay's
# thousands of ids above one pass over every delivery ever made, and scan them all.
SEEN = sa.text(
    "SELECT a.delivery_id FROM unnest(CAST(:ids AS uuid[])) AS i(id) CROSS JOIN LATERAL ("
    "SELECT delivery_id FROM webhook_attempts"
    " WHERE delivery_id = i.id AND outcome = 'delivered' LIMIT 1) AS a"
    " UNION SELECT d.id FROM unnest(CAST(:ids AS uuid[])) AS i(id) CROSS JOIN LATERAL ("
    "SELECT id FROM webhook_deliveries WHERE id = i.id LIMIT 1) AS d"
)
NEXT_VERSION = sa.text("nextval('webhook_versions')")
PENDING = "pending"
