"""What a process opens as it starts: each waited for through an outage, and closed, in
reverse order, when the process ends."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Protocol, TypeVar

from roadwatch.bootstrap.clients import open_within
from roadwatch.runtime.retry import retry_until_done

log = logging.getLogger(__name__)

# A client that does not close in this time (a request to a server that went quiet) is
# left to the process's exit, so that the rest still close and the process ends in time.
CLOSE_WITHIN = 8.0


class Opens(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...


class Starts(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


Opened = TypeVar("Opened", bound=Opens)
Started = TypeVar("Started", bound=Starts)


class Resources:
    """Opened onto `stack`. With `patience`, a resource that does not answer in that many
    seconds is DependencyUnavailable (the API, whose supervisor restarts it); without, it
    is waited for until `stop` (the consumers, which wait out any outage)."""

    def __init__(
        self,
        stack: AsyncExitStack,
        *,
        stop: asyncio.Event | None = None,
        patience: float | None = None,
        close_within: float = CLOSE_WITHIN,
    ) -> None:
        self._stack = stack
        self._stop = stop or asyncio.Event()
        self._patience = patience
        self._close_within = close_within

    async def opened(self, resource: Opened, what: str) -> Opened:
        await self.ready(what, resource.open)
        self.on_exit(resource.close, f"closing {type(resource).__name__}")
        return resource

    async def started(self, resource: Started, what: str) -> Started:
        # Tried again on the same object, which a stop would close for good: aiokafka's
        # clients cannot start again once stopped.
        await self.ready(what, resource.start)
        self.on_exit(resource.stop, f"stopping {type(resource).__name__}")
        return resource

    def on_exit(self, step: Callable[[], Awaitable[object]], what: str) -> None:
        """Run `step` as the process ends, in reverse order of the calls; given up, with a
        warning, after `close_within` seconds."""

        async def bounded() -> None:
            try:
                async with asyncio.timeout(self._close_within):
                    await step()
            except TimeoutError:
                log.warning("%s: not done within %g s, left undone", what, self._close_within)

        self._stack.push_async_callback(bounded)

    async def ready(self, what: str, step: Callable[[], Awaitable[object]]) -> None:
        """Once `step` has succeeded; nothing to close."""
        if self._patience is not None:
            await open_within(self._patience, what, step)
        else:
            await retry_until_done(step, what=what, stop=self._stop)
