"""A minimal Server-Sent Events reader for the benchmarks' /alerts clients."""

from collections.abc import AsyncIterator

import httpx


async def alert_payloads(response: httpx.Response) -> AsyncIterator[str]:
    """The data of each `alert` event, as it arrives."""
    event, data = "message", list[str]()
    async for line in response.aiter_lines():
        if not line:
            if event == "alert" and data:
                yield "\n".join(data)
            event, data = "message", list[str]()
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].lstrip())
