"""How a long-running process stops: on SIGINT or SIGTERM it finishes the work under way
within a grace period; past it, or on a second signal, it logs what it was still waiting
for and exits 1. Work left undone is replayed by the next run (offsets are committed only
for finished work), so leaving is safe; hanging is not."""

import asyncio
import contextlib
import faulthandler
import logging
import os
import signal
from types import CoroutineType, FrameType, GeneratorType

log = logging.getLogger(__name__)

# Below the 20 s that `roadwatch up` gives each of its processes, and the 30 s a container
# runtime gives, before killing: the process says what held it up before it is killed.
STOP_GRACE = 15.0
# If the event loop itself is stuck, its timer never fires; a thread's does, this later.
_STUCK_LOOP_MARGIN = 5.0
# A deliverer may hold a task for each webhook: the log line stays readable.
_TASKS_SHOWN = 60


def stop_on_signals(*, grace: float | None = STOP_GRACE) -> asyncio.Event:
    """An event set by SIGINT or SIGTERM, so that a process can finish its work and exit 0.

    With `grace`, the process exits 1 that many seconds after the first signal, or at once
    on a second, logging where each of its tasks is waiting. Without (a supervisor that
    bounds its children's stop itself), further signals are only logged.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        name = signal.Signals(signum).name
        if not stop.is_set():
            log.info("stopping on %s: finishing the work under way", name)
            stop.set()
            if grace is not None:
                loop.call_later(grace, exit_overdue, f"{grace:g} s after {name}")
                faulthandler.dump_traceback_later(grace + _STUCK_LOOP_MARGIN, exit=True)
        elif grace is not None:
            exit_overdue(f"a second {name}")
        else:
            log.info("already stopping; %s ignored", name)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    return stop


def exit_overdue(why: str) -> None:
    """Log where every task is waiting, and exit 1 without running any more of them."""
    waiting = sorted(waiting_at(task) for task in asyncio.all_tasks() if not task.done())
    shown = "; ".join(waiting[:_TASKS_SHOWN]) or "nothing"
    if len(waiting) > _TASKS_SHOWN:
        shown += f"; and {len(waiting) - _TASKS_SHOWN} more"
    log.error("stopped unfinished, %s; still waiting: %s", why, shown)
    logging.shutdown()
    os._exit(1)


def waiting_at(task: "asyncio.Task[object]") -> str:
    """The task's name and the chain of coroutines it is suspended in, outermost first."""
    chain: list[str] = []
    awaited: object = task.get_coro()
    while isinstance(awaited, CoroutineType | GeneratorType):
        frame: FrameType | None = (
            awaited.cr_frame if isinstance(awaited, CoroutineType) else awaited.gi_frame
        )
        if frame is None:
            break
        chain.append(f"{frame.f_code.co_qualname}:{frame.f_lineno}")
        awaited = awaited.cr_await if isinstance(awaited, CoroutineType) else awaited.gi_yieldfrom
    return f"{task.get_name()} in {' > '.join(chain) or 'nothing'}"


async def sleep_until_stopped(stop: asyncio.Event, seconds: float) -> None:
    """Sleep for `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
