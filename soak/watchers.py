"""SSE clients of /alerts as a browser's EventSource behaves: each keeps the last event id,
and when its stream ends for any reason it reconnects, to the next API process as a load
balancer would send it, resuming by Last-Event-ID."""

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field

import httpx
import orjson
from tests.helpers.sse import read_events

from roadwatch.api.event_ids import decode_position

Position = dict[int, int]
RECONNECT_AFTER = 0.5


@dataclass
class Watcher:
    number: int
    apis: list[str]
    headers: dict[str, str]
    # Where its first stream started: every alert from there on is due to it.
    start: Position | None = None
    seen: Counter[str] = field(default_factory=Counter)
    last_event_id: str | None = None
    reconnects: int = 0
    gaps: int = 0
    dropped: int = 0
    refused: Counter[int] = field(default_factory=Counter)

    async def run(self) -> None:
        api = self.number % len(self.apis)
        timeout = httpx.Timeout(10, read=60)
        async with httpx.AsyncClient(timeout=timeout) as client:
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    await self._follow(client, self.apis[api])
                self.reconnects += 1
                api = (api + 1) % len(self.apis)
                await asyncio.sleep(RECONNECT_AFTER)

    async def _follow(self, client: httpx.AsyncClient, api: str) -> None:
        headers = dict(self.headers)
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        async with client.stream("GET", f"{api}/alerts", headers=headers) as response:
            if response.status_code != 200:
                self.refused[response.status_code] += 1
                return
            async for event in read_events(response, positions=True):
                if event.id is not None:
                    self.last_event_id = event.id
                if event.event == "position" and self.start is None and event.id:
                    self.start = decode_position(event.id)
                elif event.event == "alert":
                    self.seen[orjson.loads(event.data)["id"]] += 1
                elif event.event == "gap":
                    self.gaps += 1
                elif event.event == "dropped":
                    self.dropped += 1
                    return


@dataclass
class Watchers:
    watchers: list[Watcher]
    tasks: list["asyncio.Task[None]"] = field(default_factory=list)

    def start(self) -> None:
        self.tasks = [asyncio.create_task(watcher.run()) for watcher in self.watchers]

    async def connected(self) -> bool:
        return all(watcher.start is not None for watcher in self.watchers)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def watchers_of(count: int, *, apis: list[str], headers: dict[str, str]) -> Watchers:
    return Watchers([Watcher(n, apis, headers) for n in range(count)])
