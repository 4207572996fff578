"""The processes `roadwatch up` supervises end with it, however it ends."""

import os
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


CTRL_C = textwrap.dedent(
    """
    import asyncio, logging, sys
    from roadwatch.cli.common import run
    from roadwatch.shutdown import stop_on_signals
    from roadwatch.supervisor import Program, Supervisor

    CHILD = '''
    import asyncio, logging, sys
    from roadwatch.cli.common import run
    from roadwatch.shutdown import stop_on_signals

    async def main() -> None:
        stop = stop_on_signals(grace=30)
        print("ready", flush=True)
        await stop.wait()
        await asyncio.sleep(1)  # work under way, finished
        print("finished", flush=True)

    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    run(main())
    '''

    async def main() -> None:
        stop = stop_on_signals(grace=None)
        supervisor = Supervisor([Program("child", [sys.executable, "-c", CHILD])])
        await supervisor.start()
        await stop.wait()
        await supervisor.stop(grace=20)

    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
    run(main())
    """
)


def test_ctrl_c_at_a_terminal_reaches_the_processes_once_and_they_finish_their_work() -> None:
    """A terminal sends SIGINT to its whole foreground process group; the supervisor sends
    its processes SIGTERM. A process that got both would take the second as a demand to
    stop at once, leaving its work undone."""
    supervisor = subprocess.Popen(
        [sys.executable, "-c", CTRL_C],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a group of its own, as a terminal's foreground job is
    )
    try:
        assert supervisor.stdout is not None
        assert supervisor.stdout.readline() == "child | ready\n"
        os.killpg(supervisor.pid, signal.SIGINT)
        out, _ = supervisor.communicate(timeout=60)
    finally:
        supervisor.kill()
    assert supervisor.returncode == 0, out
    assert "child | finished" in out, out
    assert "stopped unfinished" not in out, out
