"""Waiting on conditions, never on sleeps."""

import asyncio
import time
from collections.abc import Awaitable, Callable


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float, what: str, every: float = 0.25
) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:.0f} s: {what}")
        await asyncio.sleep(every)


async def settled() -> None:
    """Let every task that can run, run, until all wait on something: after this, what has
    not happened will not happen without outside help. For fakes that never wait on time."""
    for _ in range(50):
        await asyncio.sleep(0)
