"""Starting a client that holds connections (Kafka's, a server's): a start that fails part
way can leave some open, so the client is stopped before the failure goes on."""

import contextlib
from typing import Protocol, TypeVar


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
