"""Reads a Server-Sent Events stream as a browser would."""

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Event:
    event: str
    data: str
    id: str | None


async def read_events(response: httpx.Response, *, positions: bool = False) -> AsyncIterator[Event]:
    """The events dispatched; with `positions`, also each id sent without data (which a
    browser keeps as its Last-Event-ID, dispatching nothing) as an event "position"."""
    fields: dict[str, list[str]] = {}
    async for line in response.aiter_lines():
        if line == "":
            if "data" in fields:
                yield Event(
                    event=(fields.get("event") or ["message"])[-1],
                    data="\n".join(fields["data"]),
                    id=fields["id"][-1] if "id" in fields else None,
                )
            elif positions and "id" in fields:
                yield Event(event="position", data="", id=fields["id"][-1])
            fields = {}
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            fields.setdefault(name, []).append(value.removeprefix(" "))
