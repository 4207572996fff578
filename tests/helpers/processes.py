"""Private roadwatch stacks and the processes they run, for tests of `roadwatch infra` and `up`."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from roadwatch.infra.config import InfraConfig
from roadwatch.infra.daemon import Daemon
from tests.helpers.ports import free_port

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
        "ROADWATCH_POSTGRES_PORT": str(free_port()),
        "ROADWATCH_FERRETDB_PORT": str(free_port()),
        "ROADWATCH_FERRETDB_DEBUG_PORT": str(free_port()),
    }


def tear_down_stack(env: dict[str, str]) -> None:
    run_infra("down", env=env)
    postgres_root = Path(env["ROADWATCH_HOME"]) / "postgres"
    if postgres_root.is_symlink():
        shutil.rmtree(postgres_root.resolve(), ignore_errors=True)


def process_alive(pid: int) -> bool:
    """True unless the process is gone or a zombie waiting to be reaped by init."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in {"Z", "X"}


def running_pids(home: Path) -> dict[str, int | None]:
    config = InfraConfig(home=home)
    return {
        name: Daemon(name, config.pid_file(name), config.log_file(name)).pid()
        for name in ("postgres", "ferretdb", "kafka")
    }
