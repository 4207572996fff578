"""Real HTTP receivers for webhooks, on local ports, that verify every signature with the
Standard Webhooks reference verifier and remember what came."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook

from tests.helpers.ports import free_port

# Given the number of the request (1 for the first) and the request, the status to answer.
Behaviour = Callable[[int, web.Request], Awaitable[int]]


async def always_ok(_number: int, _request: web.Request) -> int:
    return 200


@dataclass
class Received:
    message_id: str
    event: dict[str, Any]
    # The secrets of `Receiver.secrets` whose signature the request carried.
    signed_with: list[str]
    status: int


@dataclass
class Receiver:
    port: int
    behaviour: Behaviour = always_ok
    secrets: list[str] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def acknowledged(self) -> list[Received]:
        return [request for request in self.requests if 200 <= request.status < 300]

    def alert_ids(self) -> set[str]:
        return {
            r.event["data"]["id"] for r in self.acknowledged() if r.event["type"] == "alert.created"
        }

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        signed_with = []
        event: dict[str, Any] = {}
        for secret in self.secrets:
            try:
                event = Webhook(secret).verify(body, headers)
            except Exception:  # noqa: S112 - another secret may verify it
                continue
            signed_with.append(secret)
        # Unverified: answered 401, and kept, for the test to find.
        status = await self.behaviour(len(self.requests) + 1, request) if signed_with else 401
        async with self.arrived:
            self.requests.append(
                Received(headers.get("webhook-id", ""), event, signed_with, status)
            )
            self.arrived.notify_all()
        return web.Response(status=status, text="ok" if status < 300 else "no")


@asynccontextmanager
async def receiver_running(
    behaviour: Behaviour = always_ok, *, port: int | None = None, receiver: Receiver | None = None
) -> AsyncIterator[Receiver]:
    """A receiver listening until the block ends; pass `receiver` to bring one back up."""
    receiver = receiver or Receiver(port or free_port(), behaviour)
    app = web.Application()
    app.router.add_post("/hook", receiver._handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", receiver.port, reuse_address=True)
    await site.start()
    try:
        yield receiver
    finally:
        await runner.cleanup()
