"""A client whose start fails part way is stopped before the failure goes on; a task of
one's own is cancelled without swallowing a cancellation meant for oneself."""

import asyncio

import pytest

from roadwatch.runtime.lifecycle import cancelled, started


class Client:
    def __init__(self, *, fails: bool) -> None:
        self.fails = fails
        self.stopped = False

    async def start(self) -> None:
        if self.fails:
            raise ConnectionRefusedError("no broker")

    async def stop(self) -> None:
        self.stopped = True


async def test_a_failed_start_stops_the_client_and_raises() -> None:
    client = Client(fails=True)
    with pytest.raises(ConnectionRefusedError):
        await started(client)
    assert client.stopped


async def test_a_started_client_is_returned_running() -> None:
    client = Client(fails=False)
    assert await started(client) is client
    assert not client.stopped


async def _slow_to_end(ending: asyncio.Event) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        await ending.wait()


Stopping = tuple[asyncio.Task[None], asyncio.Task[None], asyncio.Event]


async def _stopping_a_task_slow_to_end() -> Stopping:
    """A task, `cancelled` of it under way, and the event that lets the task end."""
    ending = asyncio.Event()
    task = asyncio.create_task(_slow_to_end(ending))
    await asyncio.sleep(0)
    stopping = asyncio.create_task(cancelled(task))
    await asyncio.sleep(0.01)
    return task, stopping, ending


async def test_cancelled_waits_for_the_task_to_end() -> None:
    task, stopping, ending = await _stopping_a_task_slow_to_end()
    assert not stopping.done()
    ending.set()
    await stopping
    assert task.cancelled()


async def test_the_caller_of_cancelled_is_still_cancellable_while_it_waits() -> None:
    # `with suppress(CancelledError): await task` swallowed the caller's own cancellation:
    # a stop cancelled there went on as if never cancelled.
    task, stopping, ending = await _stopping_a_task_slow_to_end()
    stopping.cancel()
    await asyncio.wait([stopping], timeout=5)
    ending.set()
    await asyncio.wait([task])
    assert stopping.cancelled()


async def test_cancelled_raises_what_the_task_raised_other_than_its_cancellation() -> None:
    async def fails_on_cancel() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise ConnectionResetError("closing") from None

    task = asyncio.create_task(fails_on_cancel())
    await asyncio.sleep(0)
    with pytest.raises(ConnectionResetError):
        await cancelled(task)
