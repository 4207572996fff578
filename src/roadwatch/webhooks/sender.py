"""One POST of a webhook, and what came of it, over connections that reach only the
addresses the target policy permits.

A receiver's answer is read as hostile bytes: its status line, reason phrase, headers and
body may hold anything, be of any length, or never end. aiohttp bounds each header line;
the attempt as a whole is bounded by its deadline; only a short body is read; and every
word of the answer that is kept (the reason phrase, an error) is made printable and
bounded first, so that the database takes it whatever it held.
"""

import asyncio
import socket
import time
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from roadwatch.text import printable
from roadwatch.webhooks.ports import Response
from roadwatch.webhooks.retries import retry_after_seconds
from roadwatch.webhooks.targets import RefusedTarget, TargetPolicy, resolve_permitted

# What is read of a response: its status is the answer, and a body is only for the record.
MAX_RESPONSE_BODY = 64 * 1024
# What is kept of an error or a reason phrase.
MAX_ERROR = 500


class PermittedResolver(AbstractResolver):
    """Resolves as the system does, then drops what the policy refuses: the address checked
    is the address connected to."""

    def __init__(self, policy: TargetPolicy) -> None:
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await resolve_permitted(self._policy, host, port)
        return [
            {
                "hostname": host,
                "host": str(address),
                "port": port,
                "family": socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        return None


class Sender:
    def __init__(self, policy: TargetPolicy, *, timeout: float) -> None:
        self._policy = policy
        self._deadline = timeout
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            resolver=PermittedResolver(self._policy),
            # Each subscription bounds its own connections; no shared limit lets a slow
            # receiver take the connections of others.
            limit=0,
            # Re-resolved often, so that a name's move to an internal address is seen.
            ttl_dns_cache=10,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            # Never the environment's proxies, and no cookies carried between receivers.
            trust_env=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent",),
            headers={"User-Agent": "roadwatch-webhooks/1"},
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        assert self._session is not None, "start() first"
        started = time.perf_counter()

        def elapsed() -> float:
            return (time.perf_counter() - started) * 1000

        def failed(error: str) -> Response:
            return Response(None, elapsed(), printable(error, limit=MAX_ERROR))

        try:
            # An IP literal is never resolved, so it is checked here.
            self._policy.check_url(url)
            # However the answer comes (a status line, headers or a body that trickle in for
            # ever), the attempt ends by its deadline.
            async with (
                asyncio.timeout(self._deadline),
                self._session.post(
                    url, data=body, headers=headers, allow_redirects=False
                ) as response,
            ):
                await _drain(response)
                return Response(
                    status=response.status,
                    latency_ms=elapsed(),
                    error=None if 200 <= response.status < 300 else _status_error(response),
                    retry_after=retry_after_seconds(response.headers.get("Retry-After")),
                )
        except RefusedTarget as refused:
            return failed(f"refused: {refused}")
        except TimeoutError:
            return failed(f"no response within {self._deadline:g} s")
        except aiohttp.ClientConnectorError as error:
            cause = error.os_error
            if isinstance(cause, RefusedTarget):
                return failed(f"refused: {cause}")
            return failed(f"cannot connect: {cause.strerror or cause}")
        except (aiohttp.ClientError, OSError, ValueError, UnicodeError) as error:
            return failed(f"{type(error).__name__}: {error}")


async def _drain(response: aiohttp.ClientResponse) -> None:
    # Read a short body whole, so that the connection is kept for the next POST; a long
    # or endless one is not read, and its connection is closed.
    length = response.content_length
    if length is not None and length <= MAX_RESPONSE_BODY:
        await response.read()
    else:
        response.close()


def _status_error(response: Any) -> str:
    if 300 <= response.status < 400:
        return f"HTTP {response.status}: redirects are not followed"
    return printable(f"HTTP {response.status} {response.reason or ''}".strip(), limit=MAX_ERROR)
