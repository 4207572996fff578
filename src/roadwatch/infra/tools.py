import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from roadwatch.infra.errors import InfraError


def find_program(
    service: str,
    program: str,
    *,
    hint: str,
    also_in: Path | None = None,
    only_in: Path | None = None,
) -> str:
    """The path of `program` (in `only_in`, else on PATH or in `also_in`), or an error saying
    how to get it."""
    if only_in is not None:
        candidate = only_in / program
        if os.access(candidate, os.X_OK):
            return str(candidate)
        raise InfraError(service, f"{program} not found in {only_in}: {hint}")
    found = shutil.which(program)
    if found:
        return found
    if also_in is not None and os.access(also_in / program, os.X_OK):
        return str(also_in / program)
    raise InfraError(service, f"{program} not found on PATH: {hint}")


@contextlib.contextmanager
def logged_child(
    log: Path,
    header: str,
    argv: list[str],
    *,
    cwd: Path | None,
    env: dict[str, str] | None,
    user: str | None,
) -> Iterator[dict[str, Any]]:
    """How a server or a step is run: as `user`, reading nothing, its output appended to
    the service's log after a line naming it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n=== roadwatch{header}: {' '.join(argv)}\n".encode())
        out.flush()
        yield {
            "cwd": cwd,
            "env": env,
            "user": user,
            "group": user,
            "stdin": subprocess.DEVNULL,
            "stdout": out,
            "stderr": subprocess.STDOUT,
        }


def run_logged(
    service: str,
    argv: list[str],
    *,
    what: str,
    log: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    user: str | None = None,
) -> None:
    """Run a provisioning step to completion, its output appended to the service's log."""
    with logged_child(log, f": {what}", argv, cwd=cwd, env=env, user=user) as child:
        result = subprocess.run(argv, **child, check=False)
    if result.returncode != 0:
        raise InfraError(service, f"{what} failed with exit code {result.returncode}", log)
