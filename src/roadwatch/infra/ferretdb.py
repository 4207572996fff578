import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import ClassVar

from pymongo import AsyncMongoClient

from roadwatch.infra.certificates import local_tls
from roadwatch.infra.config import InfraConfig
from roadwatch.infra.errors import InfraError
from roadwatch.infra.postgres import PostgresService
from roadwatch.infra.service import Service
from roadwatch.infra.tools import find_program, run_logged

FERRETDB_MODULE = "github.com/FerretDB/FerretDB"
FERRETDB_VERSION = "v1.24.2"


class FerretDBService(Service):
    """FerretDB: the MongoDB wire protocol, storing into roadwatch's PostgreSQL."""

    kind: ClassVar[str] = "ferretdb"

    def __init__(self, config: InfraConfig, *, postgres: PostgresService) -> None:
        super().__init__(config)
        self.postgres = postgres

    @property
    def ports(self) -> list[int]:
        return [
            self.config.ferretdb_port,
            self.config.ferretdb_debug_port,
            self.config.ferretdb_tls_port,
        ]

    @property
    def url(self) -> str:
        return f"mongodb://{self.config.host}:{self.config.ferretdb_port}/roadwatch"

    @property
    def tls_url(self) -> str:
        """The TLS listener, its certificate checked against the local authority."""
        ca = local_tls(self.config.tls_dir, host=self.config.host).ca
        return (
            f"mongodb://{self.config.host}:{self.config.ferretdb_tls_port}/roadwatch"
            f"?tls=true&tlsCAFile={ca}"
        )

    @property
    def _binary(self) -> Path:
        return self.config.cache / f"ferretdb-{FERRETDB_VERSION}" / "ferretdb"

    def _provision(self) -> None:
        self.config.data_dir(self.name).mkdir(parents=True, exist_ok=True)
        if not self._binary.exists():
            self._build()

    def _build(self) -> None:
        """Build FerretDB's own command from its module source.

        `go install …/cmd/ferretdb@version` yields a binary that panics at start: the release
        version is read from a file that the module leaves empty. So the source is fetched
        from the Go module proxy, that file filled in, and the same command built.
        """
        go = find_program(
            self.name,
            "go",
            hint="FerretDB is built with Go 1.22 or newer",
            also_in=Path("/usr/local/go/bin"),
        )
        log = self.daemon.log_file
        log.parent.mkdir(parents=True, exist_ok=True)
        module = f"{FERRETDB_MODULE}@{FERRETDB_VERSION}"
        with log.open("ab") as out:
            listing = subprocess.run(
                [go, "mod", "download", "-json", module],
                stdout=subprocess.PIPE,
                stderr=out,
                check=False,
            )
        if listing.returncode != 0:
            raise InfraError(self.name, f"go mod download {module} failed", log)
        source = Path(json.loads(listing.stdout)["Dir"])
        self._binary.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._binary.parent) as scratch:
            tree = Path(scratch) / "src"
            shutil.copytree(source, tree)
            for path in tree.rglob("*"):
                path.chmod(path.stat().st_mode | 0o200)
            (tree / "build" / "version" / "version.txt").write_text(FERRETDB_VERSION + "\n")
            run_logged(
                self.name,
                [go, "build", "-trimpath", "-o", str(Path(scratch) / "ferretdb"), "./cmd/ferretdb"],
                what=f"building FerretDB {FERRETDB_VERSION}",
                log=log,
                cwd=tree,
                env={**os.environ, "CGO_ENABLED": "0"},
            )
            (Path(scratch) / "ferretdb").rename(self._binary)

    def _command(self) -> list[str]:
        host = self.config.host
        tls = local_tls(self.config.tls_dir, host=host)
        return [
            str(self._binary),
            f"--listen-addr={host}:{self.config.ferretdb_port}",
            f"--listen-tls={host}:{self.config.ferretdb_tls_port}",
            f"--listen-tls-cert-file={tls.certificate}",
            f"--listen-tls-key-file={tls.key}",
            f"--debug-addr={host}:{self.config.ferretdb_debug_port}",
            "--handler=postgresql",
            # Its own server, on loopback: no TLS between the two.
            f"--postgresql-url={self.postgres.url('ferretdb', scheme='postgres')}?sslmode=disable",
            f"--state-dir={self.config.data_dir(self.name)}",
            "--telemetry=disable",
            "--log-level=warn",
        ]

    async def _probe(self) -> None:
        client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
            self.url, serverSelectionTimeoutMS=3000
        )
        try:
            await client.admin.command("ping")
            await client["roadwatch"].list_collection_names()
        finally:
            await client.close()

    async def _configure(self) -> None:
        """Nothing to create: FerretDB makes databases and collections on first use."""

    def connection_settings(self) -> dict[str, str]:
        return {"MONGO_URL": self.url}
