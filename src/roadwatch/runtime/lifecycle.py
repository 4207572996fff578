"""Starting a client that holds connections (Kafka's, a server's): a start that fails part
way can leave some open, so the client is stopped before the failure goes on. And stopping
a task of one's own without swallowing a cancellation meant for oneself."""

import asyncio
import contextlib
from typing import Any, Protocol, TypeVar


class Startable(Protocol):
    async def start(self) -> object: ...

    async def stop(self) -> object: ...


S = TypeVar("S", bound=Startable)


async def started(client: S) -> S:
    """`client`, started; stopped again, and the failure raised, if starting failed."""
    try:
        await client.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await client.stop()
        raise
    return client


async def cancelled(task: "asyncio.Future[Any]") -> None:
    """Cancel `task` and wait until it has ended; raises what it raised, other than its
    cancellation. A cancellation of the caller while it waits still reaches the caller:
    `with suppress(CancelledError): await task` would swallow that one too, and a process
    stopping (or a test's event loop closing) would then wait on the caller for ever."""
    task.cancel()
    await asyncio.wait([task])
    if not task.cancelled() and (error := task.exception()) is not None:
        raise error
