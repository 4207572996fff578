"""The local setup's roles: the indexer and the API connect as a role that may only read and
write roadwatch's tables; the migrations run as their owner."""

import asyncio
import subprocess
import sys
from datetime import date

import asyncpg
import pytest

from roadwatch.bootstrap.stores import detection_store
from tests.helpers.kafka import stream_settings
from tests.helpers.ports import free_port
from tests.helpers.processes import settings_env
from tests.helpers.servers import Servers, unique

pytestmark = [pytest.mark.postgres]


def _roadwatch(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`roadwatch command` run to its end with `env`, its output kept."""
    return subprocess.run(
        [sys.executable, "-m", "roadwatch", command],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_the_application_role_reads_and_writes_but_cannot_alter_anything(
    servers: Servers,
) -> None:
    application = servers.settings.detections_db_url
    assert application == servers.settings.users_db_url
    connection = await asyncpg.connect(application)
    try:
        assert await connection.fetchval("SELECT current_user") == "roadwatch_app"
        assert not await connection.fetchval(
            "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles "
            "WHERE rolname = current_user"
        )
        async with connection.transaction():
            await connection.execute("SELECT count(*) FROM detections")
            await connection.execute("UPDATE make_counts SET count = count WHERE false")
            await connection.execute("SELECT count(*) FROM users")
            await connection.execute(
                "CREATE TEMPORARY TABLE scratch AS SELECT * FROM detections WITH NO DATA"
            )
        for forbidden in (
            "CREATE TABLE mine (id int)",
            "DROP TABLE detections",
            "ALTER TABLE users ADD COLUMN backdoor text",
            "TRUNCATE credentials",
            "CREATE ROLE intruder",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute(forbidden)
    finally:
        await connection.close()


async def test_the_application_role_keeps_the_days_only_through_their_functions(
    servers: Servers,
) -> None:
    connection = await asyncpg.connect(servers.settings.detections_db_url)
    day = date(2001, 1, 1)
    try:
        await connection.execute("SELECT roadwatch_create_days($1::date[])", [day])
        assert await connection.fetchval("SELECT to_regclass('detections_p20010101')")
        for forbidden in (
            "DROP TABLE detections_p20010101",
            "CREATE TABLE detections_p20010102 PARTITION OF detections "
            "FOR VALUES FROM ('2001-01-02Z') TO ('2001-01-03Z')",
            "ALTER TABLE detections DETACH PARTITION detections_p20010101",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.execute(forbidden)
        await connection.execute("SELECT roadwatch_drop_day($1::date)", day)
        assert not await connection.fetchval("SELECT to_regclass('detections_p20010101')")
    finally:
        await connection.close()


async def test_the_tables_belong_to_the_owner_role_not_to_the_superuser(servers: Servers) -> None:
    connection = await asyncpg.connect(servers.postgres_url)
    try:
        owners = await connection.fetch(
            "SELECT DISTINCT pg_get_userbyid(c.relowner) AS owner FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
        )
    finally:
        await connection.close()
    assert [row["owner"] for row in owners] == ["roadwatch_owner"]


def test_roadwatch_migrate_runs_as_the_owner_and_finds_the_schemas_current(
    servers: Servers,
) -> None:
    done = _roadwatch("migrate", settings_env(servers.settings))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["users: up to date", "detections: up to date"]


def test_a_schema_behind_its_migrations_is_a_clear_error_for_the_application_role(
    servers: Servers,
) -> None:
    # Without the owner's URL, `migrate` acts as the application role; on a database whose
    # migrations were never run it may create nothing, and says what to do.
    fresh = servers.settings.detections_db_url.rsplit("/", 1)[0] + "/postgres"
    settings = servers.settings.model_copy(
        update={"migrations_db_url": None, "users_db_url": fresh, "detections_db_url": fresh}
    )
    env = {**settings_env(settings), "MIGRATIONS_DB_URL": ""}
    done = _roadwatch("migrate", env)
    assert done.returncode == 1
    assert "roadwatch migrate" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_database_that_cannot_be_reached_is_one_line_from_migrate(servers: Servers) -> None:
    nowhere = f"postgresql://roadwatch:x@127.0.0.1:{free_port()}/roadwatch"
    settings = servers.settings.model_copy(
        update={"migrations_db_url": nowhere, "users_db_url": nowhere, "detections_db_url": nowhere}
    )
    done = _roadwatch("migrate", settings_env(settings))
    assert done.returncode == 1
    assert done.stderr.startswith("roadwatch: the database cannot be reached: "), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.kafka
async def test_an_indexer_whose_role_may_not_keep_the_days_says_so_and_exits(
    servers: Servers, postgres_database: str
) -> None:
    migrated = detection_store(postgres_database)  # as the superuser
    await migrated.open()
    await migrated.close()
    role, password = unique("reader"), unique("pw")
    name = postgres_database.rsplit("/", 1)[1]
    admin = await asyncpg.connect(postgres_database)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        for grant in (
            f'GRANT CONNECT, TEMPORARY ON DATABASE "{name}" TO {role}',
            f"GRANT USAGE ON SCHEMA public TO {role}",
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        ):
            await admin.execute(grant)
        location = postgres_database.split("@", 1)[1]
        settings = (
            await stream_settings(servers, store_url=f"postgresql://{role}:{password}@{location}")
        ).model_copy(update={"detections_retention_days": 30})
        done = await asyncio.to_thread(_roadwatch, "indexer", settings_env(settings))
    finally:
        await admin.execute(f'REVOKE ALL ON DATABASE "{name}" FROM {role}')
        await admin.execute(f"DROP OWNED BY {role}")
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()

    assert done.returncode == 1
    assert "GRANT EXECUTE ON FUNCTION roadwatch_create_days" in done.stderr
    assert "Traceback" not in done.stderr
