"""The planned faults, carried out on their tracks, each with the time the system took to
recover from it: from the repair (the process started again, the server back) until every
process is ready and every detection acknowledged by then is stored.

One watcher looks at the system for every fault at once. A look of its own for each fault
could miss a moment of recovery that another fault's look saw: with faults a few seconds
apart, every process is ready together only now and then."""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from soak.fleet import Fleet
from soak.schedule import Planned
from soak.servers import SoakServers

# Past this, a fault counts as not recovered from.
RECOVERY_LIMIT = 180.0


@dataclass
class Done:
    planned: Planned
    # What it struck, by name; seconds from the soak's start.
    target: str
    began: float
    repaired: float
    # The detections acknowledged by the repair: all stored is part of recovering.
    due: int
    recovered: float | None = None

    @property
    def recovery(self) -> float | None:
        return None if self.recovered is None else self.recovered - self.repaired


@dataclass
class Faults:
    servers: SoakServers
    fleet: Fleet
    # Since the soak began, in seconds.
    clock: Callable[[], float]
    # How many detections the producer has had acknowledged, and how many are stored (None
    # while the database cannot say).
    acknowledged: Callable[[], int]
    stored: Callable[[], Awaitable[int | None]]
    # Seconds between two looks at the system.
    look_every: float = 0.5

    async def run(self, planned: list[Planned]) -> list[Done]:
        tracks: dict[str, list[Planned]] = {}
        for fault in planned:
            tracks.setdefault(fault.track, []).append(fault)
        done: list[Done] = []
        struck = asyncio.Event()
        watching = asyncio.create_task(self._watch(done, struck))
        try:
            await asyncio.gather(*(self._track(faults, done) for faults in tracks.values()))
        finally:
            struck.set()
            await watching
        return sorted(done, key=lambda fault: fault.began)

    async def _track(self, faults: list[Planned], done: list[Done]) -> None:
        for fault in faults:
            await asyncio.sleep(max(0.0, fault.at - self.clock()))
            done.append(await self._strike(fault))

    async def _watch(self, done: list[Done], struck: asyncio.Event) -> None:
        """A look every `look_every` seconds, until every fault has recovered or run out of
        time: each fault repaired before a look that found every process ready and all the
        fault's detections stored recovered at it."""
        while True:
            waiting = [
                fault
                for fault in done
                if fault.recovered is None and self.clock() - fault.repaired < RECOVERY_LIMIT
            ]
            if struck.is_set() and not waiting:
                return
            if waiting:
                stored = await self.stored()
                if stored is not None and not await self.fleet.not_ready():
                    now = self.clock()
                    for fault in waiting:
                        if stored >= fault.due:
                            fault.recovered = now
            await asyncio.sleep(self.look_every)

    async def _strike(self, fault: Planned) -> Done:
        began = self.clock()
        if fault.track == "postgres":
            target = "postgresql"
            await asyncio.to_thread(self.servers.postgres.down)
            await asyncio.sleep(fault.down)
            await self.servers.postgres.up()
        elif fault.kind == "broker killed":
            broker = self.servers.brokers[fault.target - 1]
            target = f"broker {broker.node}"
            await asyncio.to_thread(broker.daemon.kill)
            await asyncio.sleep(fault.down)
            await broker.up()
        elif fault.kind == "controller restarted":
            broker = await self.servers.active_controller()
            target = f"broker {broker.node}"
            await asyncio.to_thread(broker.down)
            await broker.up()
        else:
            member = self.fleet.of(fault.track)[fault.target]
            target = member.name
            await asyncio.to_thread(member.kill)
            await asyncio.sleep(fault.down)
            member.launch()
        return Done(fault, target, began, self.clock(), self.acknowledged())
