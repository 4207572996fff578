"""Waiting for a local cluster's brokers to join: a broker the client asks before it takes
connections is "not yet", never a failed start."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka.errors import NodeNotReadyError

from roadwatch.infra.errors import InfraError
from roadwatch.infra.kafka_cluster import joined


@pytest.fixture
async def listening() -> AsyncIterator[dict[str, Any]]:
    """A broker as describe_cluster lists it, whose port takes connections."""

    async def drop(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield {"node_id": 1, "host": "127.0.0.1", "port": port}
    finally:
        server.close()
        await server.wait_closed()


async def test_a_broker_not_ready_when_asked_is_asked_again(listening: dict[str, Any]) -> None:
    answers: list[BaseException | dict[str, Any]] = [
        NodeNotReadyError("Attempt to send a request to node which is not ready (node id 3)."),
        {"brokers": [listening]},
    ]
    asked = 0

    async def describe() -> dict[str, Any]:
        nonlocal asked
        answer = answers[min(asked, len(answers) - 1)]
        asked += 1
        if isinstance(answer, BaseException):
            raise answer
        return answer

    await joined(describe, 1, service="kafka", within=10, every=0)
    assert asked == 2


async def test_brokers_that_never_answer_are_a_clear_error_in_time() -> None:
    async def describe() -> dict[str, Any]:
        raise NodeNotReadyError("Attempt to send a request to node which is not ready")

    with pytest.raises(InfraError, match=r"not all 3 brokers joined within 0 s: .*not ready"):
        await joined(describe, 3, service="kafka", within=0.05, every=0.01)
