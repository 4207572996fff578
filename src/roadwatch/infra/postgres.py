import hashlib
import os
import pwd
import re
import secrets
import signal
import subprocess
from pathlib import Path
from typing import ClassVar

import asyncpg

from roadwatch.infra.config import InfraConfig
from roadwatch.infra.errors import InfraError
from roadwatch.infra.service import Service
from roadwatch.infra.tools import run_logged

SUPERUSER = "roadwatch"
DATABASES = ("roadwatch", "ferretdb")
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

    name: ClassVar[str] = "postgres"

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
        path = self.config.secret_file("postgres-password")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.parent.chmod(0o700)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(24))
        return path.read_text().strip()

    def url(self, database: str = "roadwatch", *, scheme: str = "postgresql") -> str:
        return (
            f"{scheme}://{SUPERUSER}:{self.password}@{self.config.host}:"
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
            existing = {
                row["datname"] for row in await connection.fetch("SELECT datname FROM pg_database")
            }
            for database in DATABASES:
                if database not in existing:
                    await connection.execute(f'CREATE DATABASE "{database}"')
        finally:
            await connection.close()

    def connection_settings(self) -> dict[str, str]:
        url = self.url("roadwatch")
        return {"DETECTIONS_DB_URL": url, "USERS_DB_URL": url, "POSTGRES_URL": url}
