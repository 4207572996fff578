import asyncio
import secrets
import socket
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from roadwatch.infra.config import InfraConfig
from roadwatch.infra.daemon import Daemon
from roadwatch.infra.errors import InfraError


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    address: str
    answering: bool
    detail: str


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class Service(ABC):
    """One local server: provisioned once, started detached, and ready only once it answers.

    `up()` and `down()` do the shared bookkeeping (pid files, taken ports, waiting with a
    deadline, one-line errors naming the service and its log); each server fills in the
    underscored steps.
    """

    # What kind of server it is ("kafka"), which `infra up --only` names; `name` is this
    # one's own, the same but for the second and later nodes of a cluster ("kafka-2").
    kind: ClassVar[str]

    def __init__(self, config: InfraConfig, *, name: str | None = None) -> None:
        self.config = config
        self.name = name or self.kind
        self.daemon = Daemon(self.name, config.pid_file(self.name), config.log_file(self.name))

    @property
    @abstractmethod
    def ports(self) -> list[int]: ...

    @property
    def address(self) -> str:
        return f"{self.config.host}:{self.ports[0]}"

    async def up(self) -> bool:
        """Start the server unless it already runs; True when this call started it."""
        if self.daemon.is_running():
            await self._wait_until_answering(within=self.config.start_timeout_seconds)
            await self._configure()
            return False
        for port in self.ports:
            if not port_is_free(self.config.host, port):
                raise InfraError(
                    self.name,
                    f"port {port} on {self.config.host} is already in use by another process",
                )
        await asyncio.to_thread(self._provision)
        self.daemon.start(
            self._command(),
            cwd=self._working_dir(),
            env=self._environment(),
            user=self._run_as(),
        )
        await self._wait_until_answering(within=self.config.start_timeout_seconds)
        await self._configure()
        return True

    def down(self) -> bool:
        """Stop the server if it runs; True when this call stopped it."""
        return self.daemon.stop()

    async def status(self) -> ServiceStatus:
        pid = self.daemon.pid()
        detail = "not running"
        answering = False
        if pid is not None:
            try:
                await asyncio.wait_for(self._probe(), timeout=5)
                answering, detail = True, "answering"
            except Exception as error:
                detail = f"not answering: {error}"
        return ServiceStatus(self.name, pid, self.address, answering, detail)

    async def _wait_until_answering(self, *, within: float) -> None:
        deadline = time.monotonic() + within
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            code = self.daemon.exit_code()
            if code is not None:
                raise InfraError(
                    self.name, f"exited with code {code} while starting", self.daemon.log_file
                )
            try:
                await asyncio.wait_for(self._probe(), timeout=10)
                return
            except Exception as error:
                last_error = error
            await asyncio.sleep(0.25)
        raise InfraError(
            self.name,
            f"did not answer on {self.address} within {within:.0f}s: {last_error}",
            self.daemon.log_file,
        )

    def _secret(self, name: str) -> str:
        """A password generated on first use and kept in the state directory."""
        path = self.config.secret_file(name)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.parent.chmod(0o700)
            path.touch(mode=0o600)
            path.write_text(secrets.token_urlsafe(24))
        return path.read_text().strip()

    def _run_as(self) -> str | None:
        return None

    def _working_dir(self) -> Path:
        return self.config.data_dir(self.name)

    def _environment(self) -> dict[str, str] | None:
        return None

    @abstractmethod
    def _provision(self) -> None:
        """Fetch or build what the server needs and prepare its data directory (blocking)."""

    @abstractmethod
    def _command(self) -> list[str]: ...

    @abstractmethod
    async def _probe(self) -> None:
        """Return once the server does real work (a query, a round trip); raise otherwise."""

    @abstractmethod
    async def _configure(self) -> None:
        """Create what roadwatch needs inside the running server; must be idempotent."""

    @abstractmethod
    def connection_settings(self) -> dict[str, str]:
        """The environment variables through which clients find this server."""
