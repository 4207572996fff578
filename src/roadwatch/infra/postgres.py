import hashlib
import os
import pwd
import re
import signal
import subprocess
from pathlib import Path
from typing import ClassVar

import asyncpg

from roadwatch.infra.certificates import local_tls
from roadwatch.infra.config import InfraConfig
from roadwatch.infra.errors import InfraError
from roadwatch.infra.service import Service
from roadwatch.infra.tools import run_logged

SUPERUSER = "roadwatch"
# Least privilege: the owner of roadwatch's tables runs the migrations; the indexer and the
# API connect as the application role, which may only read and write those tables.
OWNER = "roadwatch_owner"
APPLICATION = "roadwatch_app"
DATABASES = ("roadwatch", "ferretdb")
APPLICATION_DATABASE = "roadwatch"
# Held while the server's roles and grants are set up: one process at a time.
CONFIGURE_LOCK = 0x726F6163
# Used when the checkout lies where the postgres user cannot reach (under /root, say).
FALLBACK_ROOT = Path("/var/lib/roadwatch")


def _server_bindir() -> Path:
    candidates = [p.parent for p in Path("/usr/lib/postgresql").glob("*/bin/postgres")]
    if not candidates:
        raise InfraError(
            "postgres",
            "PostgreSQL server not found in /usr/lib/postgresql (apt-get install postgresql)",
        )
    return max(candidates, key=lambda bindir: int(re.sub(r"\D", "", bindir.parent.name) or 0))


class PostgresService(Service):
    """A PostgreSQL cluster of roadwatch's own, on its own port, with a generated password."""

    kind: ClassVar[str] = "postgres"

    def __init__(self, config: InfraConfig) -> None:
        super().__init__(config)
        # PostgreSQL refuses to run as root and asks only for a fast shutdown on SIGINT.
        self.daemon.stop_signal = signal.SIGINT
        self._user = "postgres" if os.geteuid() == 0 else None

    @property
    def ports(self) -> list[int]:
        return [self.config.postgres_port]

    @property
    def password(self) -> str:
        return self._secret("postgres-password")

    def url(
        self, database: str = "roadwatch", *, scheme: str = "postgresql", role: str = SUPERUSER
    ) -> str:
        password = self.password if role == SUPERUSER else self._secret(f"postgres-{role}")
        return (
            f"{scheme}://{role}:{password}@{self.config.host}:"
            f"{self.config.postgres_port}/{database}"
        )

    @property
    def _root(self) -> Path:
        """The folder the server's user owns: the cluster's data, socket and start-up files."""
        preferred = self.config.data_dir(self.name)
        if self._user is None or self._reachable_by_server_user(preferred.parent):
            return preferred
        digest = hashlib.sha256(str(preferred).encode()).hexdigest()[:12]
        return FALLBACK_ROOT / digest

    def _reachable_by_server_user(self, folder: Path) -> bool:
        folder.mkdir(parents=True, exist_ok=True)
        check = subprocess.run(["test", "-x", str(folder)], user=self._user, check=False)
        return check.returncode == 0

    def _run_as(self) -> str | None:
        return self._user

    def _working_dir(self) -> Path:
        return self._root

    def _provision(self) -> None:
        if self._user is not None:
            try:
                pwd.getpwnam(self._user)
            except KeyError:
                raise InfraError(
                    self.name, "the 'postgres' system user is missing (apt-get install postgresql)"
                ) from None
        bindir = _server_bindir()
        root = self._root
        for folder in (root, root / "run"):
            folder.mkdir(parents=True, exist_ok=True)
            self._give_to_server_user(folder)
        link = self.config.data_dir(self.name)
        if root != link and not link.exists():
            link.symlink_to(root)
        self._install_tls(root / "tls")
        if (root / "data" / "PG_VERSION").exists():
            return
        password_file = root / "initial-password"
        password_file.write_text(self.password)
        self._give_to_server_user(password_file)
        try:
            run_logged(
                self.name,
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(root / "data"),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={password_file}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                ],
                what="creating the database cluster",
                log=self.daemon.log_file,
                user=self._user,
                cwd=root,
            )
        finally:
            password_file.unlink(missing_ok=True)

    def _install_tls(self, folder: Path) -> None:
        """The server's certificate and key, where only the server's user may read them (as
        PostgreSQL requires of its key)."""
        tls = local_tls(self.config.tls_dir, host=self.config.host)
        folder.mkdir(mode=0o700, exist_ok=True)
        self._give_to_server_user(folder)
        for source, name in ((tls.certificate, "server.pem"), (tls.key, "server-key.pem")):
            target = folder / name
            target.touch(mode=0o600)
            target.write_bytes(source.read_bytes())
            self._give_to_server_user(target)

    def _give_to_server_user(self, path: Path) -> None:
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _command(self) -> list[str]:
        root = self._root
        return [
            str(_server_bindir() / "postgres"),
            "-D",
            str(root / "data"),
            "-c",
            f"listen_addresses={self.config.host}",
            "-p",
            str(self.config.postgres_port),
            "-c",
            f"unix_socket_directories={root / 'run'}",
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=256MB",
            "-c",
            "max_wal_size=2GB",
            # Clients choose: sslmode=verify-full against the local authority's ca.pem.
            "-c",
            "ssl=on",
            "-c",
            f"ssl_cert_file={root / 'tls' / 'server.pem'}",
            "-c",
            f"ssl_key_file={root / 'tls' / 'server-key.pem'}",
        ]

    async def _probe(self) -> None:
        connection = await asyncpg.connect(self.url("postgres"), timeout=5)
        try:
            await connection.fetchval("SELECT 1")
        finally:
            await connection.close()

    async def _configure(self) -> None:
        connection = await asyncpg.connect(self.url("postgres"), timeout=5)
        try:
            # Processes configuring at once (test workers, a second `infra up`) take turns:
            # PostgreSQL refuses two concurrent changes of one role ("tuple concurrently
            # updated"), and two CREATE DATABASE of one name.
            await connection.execute("SELECT pg_advisory_lock($1)", CONFIGURE_LOCK)
            await self._configure_roles(connection)
            await self.grant_application(APPLICATION_DATABASE)
        finally:
            await connection.close()

    async def _configure_roles(self, connection: asyncpg.Connection) -> None:
        found = await connection.fetch("SELECT rolname FROM pg_roles")
        roles = {row["rolname"] for row in found}
        for role in (OWNER, APPLICATION):
            verb = "ALTER" if role in roles else "CREATE"
            password = self._secret(f"postgres-{role}").replace("'", "''")
            await connection.execute(f"{verb} ROLE {role} LOGIN PASSWORD '{password}'")
        existing = {
            row["datname"] for row in await connection.fetch("SELECT datname FROM pg_database")
        }
        for database in DATABASES:
            if database not in existing:
                await connection.execute(f'CREATE DATABASE "{database}"')

    async def grant_application(self, database: str) -> None:
        """The owner owns the database and every table in it (those that an older roadwatch
        created as the superuser too); the application role may read and write them."""
        connection = await asyncpg.connect(self.url(database), timeout=5)
        try:
            await connection.execute(f'ALTER DATABASE "{database}" OWNER TO {OWNER}')
            await connection.execute(f"ALTER SCHEMA public OWNER TO {OWNER}")
            tables = await connection.fetch(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'S', 'v', 'm') "
                "AND pg_get_userbyid(c.relowner) <> $1",
                OWNER,
            )
            for table in tables:
                name = table["relname"]
                await connection.execute(f'ALTER TABLE public."{name}" OWNER TO {OWNER}')
            for statement in (
                f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC',
                f'GRANT CONNECT, TEMPORARY ON DATABASE "{database}" TO {APPLICATION}',
                "REVOKE CREATE ON SCHEMA public FROM PUBLIC",
                f"GRANT USAGE ON SCHEMA public TO {APPLICATION}",
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
                f"TO {APPLICATION}",
                f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APPLICATION}",
                # The functions through which it keeps the detections' days.
                f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {APPLICATION}",
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} IN SCHEMA public "
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APPLICATION}",
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} IN SCHEMA public "
                f"GRANT USAGE, SELECT ON SEQUENCES TO {APPLICATION}",
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {OWNER} IN SCHEMA public "
                f"GRANT EXECUTE ON FUNCTIONS TO {APPLICATION}",
            ):
                await connection.execute(statement)
        finally:
            await connection.close()

    def connection_settings(self) -> dict[str, str]:
        application = self.url(APPLICATION_DATABASE, role=APPLICATION)
        return {
            "DETECTIONS_DB_URL": application,
            "USERS_DB_URL": application,
            "MIGRATIONS_DB_URL": self.url(APPLICATION_DATABASE, role=OWNER),
            # The superuser, for administration (and for tests to create databases).
            "POSTGRES_URL": self.url(APPLICATION_DATABASE),
        }
