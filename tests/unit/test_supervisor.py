"""The processes `roadwatch up` supervises end with it, however it ends."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.helpers.processes import process_alive

SUPERVISOR = textwrap.dedent(
    """
    import asyncio, os, sys
    from roadwatch.supervisor import Program, Supervisor

    async def main() -> None:
        child = [sys.executable, "-c", "import time; print('child up', flush=True); time.sleep(99)"]
        supervisor = Supervisor([Program("child", child)])
        await supervisor.start()
        await asyncio.sleep(120)

    asyncio.run(main())
    """
)


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def test_a_supervisor_killed_outright_takes_its_processes_with_it() -> None:
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR], stdout=subprocess.PIPE, text=True
    )
    try:
        assert supervisor.stdout is not None
        assert supervisor.stdout.readline() == "child | child up\n"
        children = _children(supervisor.pid)
        assert len(children) == 1
        supervisor.send_signal(signal.SIGKILL)
        supervisor.wait(timeout=10)
        deadline = time.monotonic() + 10
        while process_alive(children[0]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not process_alive(children[0]), "the child outlived its supervisor"
    finally:
        supervisor.kill()
        supervisor.communicate()
