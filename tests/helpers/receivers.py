"""Real HTTP receivers for webhooks, on local ports, that verify every signature with the
Standard Webhooks reference verifier and remember what came."""

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
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
    body: bytes
    headers: dict[str, str]
    status: int
    # The receiver's secrets, as they are when asked: a secret learnt after the request came
    # (shown by the answer that made the subscription) still verifies it.
    secrets: list[str]

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed

    @property
    def signed_with(self) -> list[str]:
        """Those of the secrets whose signature the request carries, per the reference
        verifier (which also refuses a stale timestamp)."""
        verified = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(self.body, self.headers)
            except Exception:  # noqa: S112 - another secret may verify it
                continue
            verified.append(secret)
        return verified


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
        status = await self.behaviour(len(self.requests) + 1, request)
        async with self.arrived:
            self.requests.append(
                Received(headers.get("webhook-id", ""), body, headers, status, self.secrets)
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
