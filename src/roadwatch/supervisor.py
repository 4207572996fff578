"""Runs roadwatch's processes side by side, their output prefixed, and stops them together."""

import asyncio
import ctypes
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Program:
    name: str
    argv: list[str]


class Supervisor:
    def __init__(self, programs: list[Program], *, env: dict[str, str] | None = None) -> None:
        self._programs = programs
        self._env = env
        self._running: dict[str, asyncio.subprocess.Process] = {}
        self._echoes: list[asyncio.Task[None]] = []
        self._width = max(len(program.name) for program in programs)

    def say(self, name: str, line: str) -> None:
        """A line of the supervisor's own, prefixed like the programs' output."""
        sys.stdout.write(f"{name:<{self._width}} | {line}\n")
        sys.stdout.flush()

    async def start(self) -> None:
        width = self._width
        for program in self._programs:
            process = await asyncio.create_subprocess_exec(
                *program.argv,
                env=self._env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                preexec_fn=_ended_with(os.getpid()),
                # Out of the terminal's process group: Ctrl-C reaches the supervisor alone,
                # which stops each process with one SIGTERM. A second signal tells a process
                # to stop at once, work undone.
                start_new_session=True,
            )
            self._running[program.name] = process
            assert process.stdout is not None
            self._echoes.append(
                asyncio.create_task(_echo(process.stdout, f"{program.name:<{width}} | "))
            )

    async def wait_for_first_exit(self) -> tuple[str, int]:
        """The name and exit code of the first process to end."""
        waits = {
            asyncio.create_task(process.wait()): name for name, process in self._running.items()
        }
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        first = done.pop()
        return waits[first], first.result()

    async def stop(self, *, grace: float = 20.0) -> None:
        """SIGTERM to all, in reverse order of start; SIGKILL to any still running after grace."""
        for process in reversed(self._running.values()):
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in self._running.values():
            try:
                await asyncio.wait_for(process.wait(), timeout=grace)
            except TimeoutError:
                process.kill()
                await process.wait()
        await asyncio.gather(*self._echoes, return_exceptions=True)


async def _echo(stream: asyncio.StreamReader, prefix: str) -> None:
    async for line in stream:
        sys.stdout.write(prefix + line.decode(errors="replace"))
        sys.stdout.flush()


def _ended_with(supervisor: int) -> Callable[[], None] | None:
    """For a child, before it runs: be sent SIGTERM when the supervisor ends, however it ends
    (killed, or crashed before it could stop its processes), rather than run on orphaned.
    Linux only; elsewhere, children outlive a supervisor that did not stop them."""
    if not sys.platform.startswith("linux"):
        return None
    # Looked up here, not in the child, which must do no more than a system call before exec.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    set_death_signal = 1  # PR_SET_PDEATHSIG

    def in_child() -> None:
        prctl(set_death_signal, signal.SIGTERM)
        if os.getppid() != supervisor:  # it ended before the call above
            os.kill(os.getpid(), signal.SIGTERM)

    return in_child
