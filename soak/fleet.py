"""roadwatch's processes in the soak, each its own: indexers and deliverers in one group
apiece, and API processes; each can be killed with SIGKILL and started again as it was."""

import asyncio
import secrets
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tests.helpers.ports import free_port
from tests.helpers.processes import (
    TEST_SETUP_TOKEN,
    settings_env,
    start_deliverer_process,
    start_indexer_process,
    stop_process,
)

from roadwatch.settings import Settings

Start = Callable[[], "subprocess.Popen[bytes]"]


@dataclass
class Member:
    name: str
    role: str
    start: Start
    # Where it answers /readyz.
    health: str
    popen: "subprocess.Popen[bytes] | None" = None
    kills: int = 0

    def launch(self) -> None:
        self.popen = self.start()

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer stops it."""
        assert self.popen is not None
        self.popen.kill()
        self.popen.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            stop_process(self.popen)

    async def ready(self, client: httpx.AsyncClient) -> bool:
        if self.popen is None or self.popen.poll() is not None:
            return False
        try:
            return (await client.get(f"{self.health}/readyz", timeout=5)).status_code == 200
        except httpx.HTTPError:
            return False


@dataclass
class Fleet:
    members: list[Member] = field(default_factory=list)

    def of(self, role: str) -> list[Member]:
        return [member for member in self.members if member.role == role]

    @property
    def api_urls(self) -> list[str]:
        return [member.health for member in self.of("api")]

    async def not_ready(self, members: list[Member] | None = None) -> list[str]:
        """The names of those (of all, by default) not ready now."""
        members = self.members if members is None else members
        async with httpx.AsyncClient() as client:
            answers = await asyncio.gather(*(member.ready(client) for member in members))
        return [member.name for member, ready in zip(members, answers, strict=True) if not ready]

    def stop(self) -> None:
        for member in self.members:
            member.stop()


def _api(settings: Settings, *, port: int, log: Path, jwt_secret: str) -> Start:
    environment = {
        **settings_env(settings),
        "JWT_SECRET": jwt_secret,
        "SETUP_TOKEN": TEST_SETUP_TOKEN,
    }

    def start() -> "subprocess.Popen[bytes]":
        with log.open("ab") as out:
            command = [sys.executable, "-m", "roadwatch", "api", "--port", str(port)]
            return subprocess.Popen(command, env=environment, stdout=out, stderr=subprocess.STDOUT)

    return start


def fleet_of(settings: Settings, *, logs: Path, indexers: int, apis: int, deliverers: int) -> Fleet:
    """The processes, not yet started; every one logs to its own file under `logs`."""
    fleet = Fleet()
    # One key for every API process: a token issued by one is good at the other.
    jwt_secret = secrets.token_urlsafe(48)
    for n in range(1, apis + 1):
        port = free_port()
        start = _api(settings, port=port, log=logs / f"api-{n}.log", jwt_secret=jwt_secret)
        fleet.members.append(Member(f"api-{n}", "api", start, f"http://127.0.0.1:{port}"))
    grouped = (
        ("indexer", indexers, start_indexer_process),
        ("deliverer", deliverers, start_deliverer_process),
    )
    for role, count, starter in grouped:
        for n in range(1, count + 1):
            port, log = free_port(), logs / f"{role}-{n}.log"

            def start(
                starter: Callable[..., "subprocess.Popen[bytes]"] = starter,
                role: str = role,
                log: Path = log,
                port: int = port,
            ) -> "subprocess.Popen[bytes]":
                return starter(settings, group=f"soak-{role}", log=log, metrics_port=port)

            fleet.members.append(Member(f"{role}-{n}", role, start, f"http://127.0.0.1:{port}"))
    return fleet
