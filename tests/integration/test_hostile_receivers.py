"""A webhook receiver that answers with any bytes (status lines, reason phrases, headers,
bodies), or never finishes answering, beside an innocent one: the innocent receiver gets
every alert, the deliverer stays alive and ready, and every attempt on the hostile one is
recorded.

The fuzz test runs ROADWATCH_FUZZ_EXAMPLES examples (12 unless set; `make fuzz` runs more).
"""

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.helpers.ports import free_port
from tests.helpers.servers import Servers
from tests.helpers.system import System, system_running
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

FUZZ_EXAMPLES = int(os.environ.get("ROADWATCH_FUZZ_EXAMPLES", "12"))
# Each example takes up to a second or so: make fuzz's hundreds need more than a test's 180 s.
FUZZ_SECONDS = 120 + 3 * FUZZ_EXAMPLES


@dataclass
class Answer:
    """What the hostile receiver sends back, byte for byte, and after how many of them it
    stops sending and holds the connection open (None: it sends all, then closes)."""

    data: bytes
    hang_after: int | None = None


class HostileReceiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.answer = Answer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        self.requests = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def __aenter__(self) -> "HostileReceiver":
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answer = self.answer
        with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            self.requests += 1
            if answer.hang_after is None:
                writer.write(answer.data)
                await writer.drain()
            else:
                writer.write(answer.data[: answer.hang_after])
                await writer.drain()
                # Longer than any attempt's deadline.
                await asyncio.sleep(30)
        writer.close()


@dataclass
class Rig:
    system: System
    hostile: HostileReceiver
    webhook_id: str


@pytest.fixture(scope="module")
async def rig(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    async with (
        system_running(servers, logs=tmp_path_factory.mktemp("system")) as system,
        HostileReceiver() as hostile,
    ):
        created = await system.stack.client.post(
            "/webhooks", json={"url": hostile.url}, headers=system.stack.admin
        )
        assert created.status_code == 201, created.text
        yield Rig(system, hostile, created.json()["id"])


async def attempts(rig: Rig) -> list[dict[str, Any]]:
    listed = await rig.system.stack.client.get(
        f"/webhooks/{rig.webhook_id}/deliveries", headers=rig.system.stack.admin
    )
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


async def recorded(rig: Rig, fragment: str, *, after: set[str]) -> None:
    """An attempt not among `after` failed, and its error says `fragment`."""

    async def seen() -> bool:
        return any(
            a["id"] not in after and a["error"] is not None and fragment in a["error"]
            for a in await attempts(rig)
        )

    await eventually(seen, within=20, what=f"an attempt recorded with {fragment!r}")


async def answered(rig: Rig, answer: Answer) -> set[str]:
    """The hostile receiver answers so from now on; the ids of the attempts made before."""
    rig.hostile.answer = answer
    return {a["id"] for a in await attempts(rig)}


@pytest.mark.parametrize(
    ("answer", "kept"),
    [
        (b"HTTP/1.1 500 Bad\x00Thing\r\nContent-Length: 0\r\n\r\n", "HTTP 500 Bad\\x00Thing"),
        (b"HTTP/1.1 503 \xff\xfe\xfd\r\nContent-Length: 0\r\n\r\n", "HTTP 503"),
        (b"HTTP/1.1 500 " + b"r" * 5000 + b"\r\nContent-Length: 0\r\n\r\n", "HTTP 500 rrr"),
        (b"HTTP/1.1 429 Slow\r\nRetry-After: \xc2\xb2\r\nContent-Length: 0\r\n\r\n", "429"),
    ],
    ids=["nul-reason", "invalid-utf8-reason", "5000-byte-reason", "superscript-retry-after"],
)
async def test_a_receivers_answer_is_recorded_as_printable_text_and_holds_up_no_other(
    rig: Rig, answer: bytes, kept: str
) -> None:
    before = await answered(rig, Answer(answer))
    await rig.system.alert_followed()
    await recorded(rig, kept, after=before)


@pytest.mark.parametrize(
    ("answer", "kept"),
    [
        (Answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nthen nothing", 30), "2 s"),
        (Answer(b"HTTP/1.1 2", hang_after=10), "no response within 2 s"),
        (Answer(b"HTTP/1.1 200 OK\r\nX-Endless: " + b"a" * 100, 100), "no response within 2 s"),
        (Answer(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part"), "Payload"),
    ],
    ids=["body-that-stops", "status-line-that-stops", "header-that-stops", "body-cut-short"],
)
async def test_an_answer_that_never_ends_ends_by_the_attempts_deadline(
    rig: Rig, answer: Answer, kept: str
) -> None:
    before = await answered(rig, answer)
    await rig.system.alert_followed()
    await recorded(rig, kept, after=before)


# Any answer at all.

reasons = st.binary(max_size=64)
header_lines = st.lists(
    st.one_of(
        st.binary(max_size=40).map(lambda b: b.replace(b"\r\n", b"")),
        st.sampled_from(
            [
                b"Content-Length: -1",
                b"Content-Length: 99999999999999999999",
                b"Transfer-Encoding: chunked",
                b"Retry-After: 1e999",
                b"Retry-After: Sun, 29 Nov 99999 12:01:00 GMT",
                b"Content-Type: \xff",
            ]
        ),
    ),
    max_size=6,
)
answers = st.builds(
    lambda status, reason, headers, body, hang: Answer(
        b"HTTP/1.1 "
        + status
        + b" "
        + reason
        + b"\r\n"
        + b"\r\n".join(headers)
        + b"\r\n\r\n"
        + body,
        hang,
    ),
    st.sampled_from([b"200", b"204", b"301", b"429", b"500", b"999", b"abc", b""]),
    reasons,
    header_lines,
    st.binary(max_size=256),
    st.none() | st.integers(0, 300),
) | st.builds(Answer, st.binary(max_size=256), st.none() | st.integers(0, 300))


@pytest.mark.timeout(FUZZ_SECONDS)
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(answer=answers)
async def test_fuzz_any_answer_from_a_receiver(rig: Rig, answer: Answer) -> None:
    rig.hostile.answer = answer
    await rig.system.alert_followed()
