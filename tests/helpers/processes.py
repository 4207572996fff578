"""roadwatch's processes as tests run them: an indexer in this process or its own, the API in
its own, and private stacks for the tests of `roadwatch infra` and `up`."""

import asyncio
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client import CollectorRegistry

from roadwatch.bootstrap.deliverer import started_deliverer
from roadwatch.bootstrap.indexer import started_indexer
from roadwatch.indexer.runner import Indexer
from roadwatch.infra.config import InfraConfig
from roadwatch.infra.daemon import Daemon
from roadwatch.runtime.readiness import STUCK_AFTER
from roadwatch.settings import Settings
from roadwatch.webhooks.deliverer import Deliverer
from tests.helpers.ports import free_port
from tests.helpers.servers import unique

ROADWATCH = [sys.executable, "-m", "roadwatch"]


def run_infra(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ROADWATCH, "infra", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def isolated_environment(home: Path) -> dict[str, str]:
    """The environment of a second, private roadwatch stack on ports of its own."""
    return {
        **os.environ,
        "ROADWATCH_HOME": str(home),
        "ROADWATCH_KAFKA_PORT": str(free_port()),
        "ROADWATCH_KAFKA_CONTROLLER_PORT": str(free_port()),
        "ROADWATCH_KAFKA_SECURED_PORT": str(free_port()),
        "ROADWATCH_POSTGRES_PORT": str(free_port()),
        "ROADWATCH_FERRETDB_PORT": str(free_port()),
        "ROADWATCH_FERRETDB_DEBUG_PORT": str(free_port()),
        "ROADWATCH_FERRETDB_TLS_PORT": str(free_port()),
    }


def tear_down_stack(env: dict[str, str]) -> None:
    run_infra("down", env=env)
    postgres_root = Path(env["ROADWATCH_HOME"]) / "postgres"
    if postgres_root.is_symlink():
        shutil.rmtree(postgres_root.resolve(), ignore_errors=True)


def stop_process(process: "subprocess.Popen[bytes]", *, timeout: float = 30) -> bool:
    """SIGTERM, then SIGKILL after `timeout`; True if it ended on the SIGTERM."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return False
    return True


def stopped_exit_code(process: "subprocess.Popen[bytes]", log: Path, *, timeout: float = 30) -> int:
    """SIGTERM; the exit code, or a failure quoting the end of the process's `log` if it is
    still running after `timeout` s (then it is killed)."""
    if not stop_process(process, timeout=timeout):
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise AssertionError(f"still running {timeout:g} s after SIGTERM; its log ends:\n{tail}")
    return process.returncode


def process_alive(pid: int) -> bool:
    """True unless the process is gone or a zombie waiting to be reaped by init."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in {"Z", "X"}


def children_of(parent: int) -> list[int]:
    """The pids of the processes whose parent is `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                found.append(int(entry.name))
    return found


def running_pids(home: Path) -> dict[str, int | None]:
    config = InfraConfig(home=home)
    return {
        name: Daemon(name, config.pid_file(name), config.log_file(name)).pid()
        for name in ("postgres", "ferretdb", "kafka")
    }


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment through which a roadwatch process gets these settings."""
    return {**os.environ, **settings.as_environment(), "LOG_FORMAT": "json"}


@dataclass
class RunningIndexer:
    task: asyncio.Task[None]
    indexer: Indexer

    def done(self) -> bool:
        return self.task.done()


@asynccontextmanager
async def indexer_running(
    settings: Settings,
    *,
    group: str | None = None,
    stuck_after: float = STUCK_AFTER,
    registry: CollectorRegistry | None = None,
) -> AsyncIterator[RunningIndexer]:
    """An indexer in this process, stopped (its batch finished) on leaving."""
    stop = asyncio.Event()
    async with started_indexer(
        settings,
        stop=stop,
        group_id=group or unique("group"),
        stuck_after=stuck_after,
        registry=registry,
    ) as indexer:
        task = asyncio.create_task(indexer.run(stop))
        try:
            yield RunningIndexer(task, indexer)
        finally:
            stop.set()
            await task


def start_indexer_process(
    settings: Settings, *, group: str, log: Path, metrics_port: int = 0
) -> subprocess.Popen[bytes]:
    """`roadwatch indexer` as its own process, its output appended to `log`."""
    command = ["indexer", "--group", group, "--metrics-port", str(metrics_port)]
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "roadwatch", *command],
            env=settings_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


# Long enough for HS512 too, so that a test can forge such a token without a key warning.
TEST_JWT_SECRET = "test-secret-" + "0123456789abcdef" * 4
# The setup token of every API a test starts, and the header that creates its first user.
TEST_SETUP_TOKEN = "test-setup-token"
FIRST_USER = {"X-Setup-Token": TEST_SETUP_TOKEN}


@dataclass
class ApiProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> bool:
        """SIGTERM; True if the server shut down cleanly (uvicorn re-raises the signal after
        its graceful shutdown, so the exit code is -SIGTERM either way)."""
        if not stop_process(self.process, timeout=20):
            return False
        return "Application shutdown complete" in self.log.read_text()


def start_api(
    settings: Settings, *, port: int, log: Path, within: float = 60, workers: int = 1
) -> ApiProcess:
    env = {**settings_env(settings), "JWT_SECRET": TEST_JWT_SECRET, "SETUP_TOKEN": TEST_SETUP_TOKEN}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "roadwatch",
                "api",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    api = ApiProcess(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited with {process.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{api.url}/readyz", timeout=2).status_code == 200:
                return api
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    api.stop()
    raise RuntimeError(f"the API was not ready within {within} s: {log.read_text()}")


@asynccontextmanager
async def deliverer_running(
    settings: Settings, *, group: str | None = None, registry: CollectorRegistry | None = None
) -> AsyncIterator[Deliverer]:
    """A deliverer in this process, stopped on leaving."""
    stop = asyncio.Event()
    async with started_deliverer(
        settings, stop=stop, group_id=group or unique("deliver"), registry=registry
    ) as deliverer:
        task = asyncio.create_task(deliverer.run())
        try:
            yield deliverer
        finally:
            stop.set()
            await task


def start_deliverer_process(
    settings: Settings, *, group: str, log: Path, metrics_port: int = 0
) -> subprocess.Popen[bytes]:
    """`roadwatch deliver` as its own process, its output appended to `log`."""
    command = ["deliver", "--group", group, "--metrics-port", str(metrics_port)]
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "roadwatch", *command],
            env=settings_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
