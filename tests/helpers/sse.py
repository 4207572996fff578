"""Reads a Server-Sent Events stream as a browser would."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Event:
    event: str
    data: str
    id: str | None


async def read_events(response: httpx.Response) -> AsyncIterator[Event]:
    fields: dict[str, list[str]] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                yield Event(
                    event=(fields.get("event") or ["message"])[-1],
                    data="\n".join(fields["data"]),
                    id=fields["id"][-1] if "id" in fields else None,
                )
            fields = {}
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            fields.setdefault(name, []).append(value.removeprefix(" "))
