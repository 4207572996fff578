"""`roadwatch status` asks ports that may answer anything: whatever bytes come back, or none,
or an answer that never ends, it says "not ready" with a printable reason, within its
bound, and never raises."""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roadwatch.status.scrape import ANSWER_WITHIN, ask
from tests.helpers.ports import free_port

FUZZ_EXAMPLES = int(os.environ.get("ROADWATCH_FUZZ_EXAMPLES", "12"))


class Port:
    """Answers every request with `answer`, then closes; or, with `hang`, keeps it open."""

    def __init__(self) -> None:
        self.port = free_port()
        self.answer = b""
        self.hang = False

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(self.answer)
            await writer.drain()
            if self.hang:
                await asyncio.sleep(ANSWER_WITHIN * 2)
        writer.close()


@contextlib.asynccontextmanager
async def port_answering() -> AsyncIterator[Port]:
    port = Port()
    server = await asyncio.start_server(port._handle, "127.0.0.1", port.port)
    try:
        yield port
    finally:
        server.close()


def _printable(text: str) -> bool:
    return all(c.isprintable() for c in text)


ANSWERS = st.one_of(
    st.binary(max_size=2000),
    st.builds(
        lambda status, head, body: b"HTTP/1.1 " + status + b"\r\n" + head + b"\r\n\r\n" + body,
        st.binary(max_size=40),
        st.binary(max_size=200),
        st.binary(max_size=500),
    ),
    st.builds(
        lambda body: b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body),
        st.binary(max_size=500),
    ),
)


@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(answer=ANSWERS)
def test_any_answer_is_not_ready_with_a_printable_reason(answer: bytes) -> None:
    async def asked() -> None:
        async with port_answering() as port, aiohttp.ClientSession() as session:
            port.answer = answer
            found = await ask(session, f"http://127.0.0.1:{port.port}")
        assert not found.ready
        assert found.problem
        assert _printable(found.problem), found.problem

    asyncio.run(asked())


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n{",
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n{"ready": true,',
        b"HTTP/1.1 200 \x1b[2J\r\n\r\n",
    ],
)
async def test_an_answer_that_never_ends_is_cut_at_the_bound(answer: bytes) -> None:
    async with port_answering() as port, aiohttp.ClientSession() as session:
        port.answer, port.hang = answer, True
        async with asyncio.timeout(ANSWER_WITHIN * 1.5):
            found = await ask(session, f"http://127.0.0.1:{port.port}")
    assert not found.ready
    assert found.problem
    assert _printable(found.problem)


async def test_a_huge_readiness_answer_is_read_to_its_bound() -> None:
    body = b'{"ready": false, "checks": {"x": "' + b"y" * 10_000_000 + b'"}}'
    answer = b"HTTP/1.1 503 Busy\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
    async with port_answering() as port, aiohttp.ClientSession() as session:
        port.answer = answer
        found = await ask(session, f"http://127.0.0.1:{port.port}")
    assert not found.ready
    assert found.problem
    assert len(found.problem) <= 300
