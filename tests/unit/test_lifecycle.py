"""A client whose start fails part way is stopped before the failure goes on."""

import pytest

from roadwatch.runtime.lifecycle import started


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
