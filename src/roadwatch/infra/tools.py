import os
import shutil
import subprocess
from pathlib import Path

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
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        out.write(f"\n=== roadwatch: {what}: {' '.join(argv)}\n".encode())
        out.flush()
        result = subprocess.run(
            argv,
            cwd=cwd,
            env=env,
            user=user,
            group=user,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if result.returncode != 0:
        raise InfraError(service, f"{what} failed with exit code {result.returncode}", log)
