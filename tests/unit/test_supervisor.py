"""The processes `roadwatch up` supervises end with it, however it ends."""

import signal
import subprocess
import sys
import textwrap
import time

from tests.helpers.processes import children_of, process_alive

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


def test_a_supervisor_killed_outright_takes_its_processes_with_it() -> None:
    supervisor = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR], stdout=subprocess.PIPE, text=True
    )
    try:
        assert supervisor.stdout is not None
        assert supervisor.stdout.readline() == "child | child up\n"
        children = children_of(supervisor.pid)
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
