"""What a process opened is closed as it ends, in reverse order, each within a bound: one
that never closes is left with a warning, and the rest still close."""

import asyncio
import logging
from contextlib import AsyncExitStack

import pytest

from roadwatch.bootstrap.resources import Resources


class Client:
    def __init__(self, name: str, closed: list[str], *, hangs: bool = False) -> None:
        self.name = name
        self.closed = closed
        self.hangs = hangs

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        if self.hangs:
            await asyncio.Event().wait()
        self.closed.append(self.name)


async def test_clients_stop_in_reverse_order() -> None:
    closed: list[str] = []
    async with AsyncExitStack() as stack:
        resources = Resources(stack)
        await resources.started(Client("first", closed), "starting")
        await resources.started(Client("second", closed), "starting")
    assert closed == ["second", "first"]


async def test_a_client_that_never_stops_is_left_and_the_others_still_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed: list[str] = []
    async with asyncio.timeout(10), AsyncExitStack() as stack:
        resources = Resources(stack, close_within=0.2)
        await resources.started(Client("first", closed), "starting")
        await resources.started(Client("stuck", closed, hangs=True), "starting")
        await resources.started(Client("last", closed), "starting")
    assert closed == ["last", "first"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["stopping Client: not done within 0.2 s, left undone"]
