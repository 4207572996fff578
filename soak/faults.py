"""The planned faults, carried out on their tracks, each with the time the system took to
recover from it: from the repair (the process started again, the server back) until every
process is ready and every detection acknowledged by then is stored."""

import asyncio
import time
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

    async def run(self, planned: list[Planned]) -> list[Done]:
        tracks: dict[str, list[Planned]] = {}
        for fault in planned:
            tracks.setdefault(fault.track, []).append(fault)
        done: list[Done] = []
        recoveries: list[asyncio.Task[None]] = []
        await asyncio.gather(*(self._track(faults, done, recoveries) for faults in tracks.values()))
        await asyncio.gather(*recoveries)
        return sorted(done, key=lambda fault: fault.began)

    async def _track(
        self, faults: list[Planned], done: list[Done], recoveries: list["asyncio.Task[None]"]
    ) -> None:
        for fault in faults:
            await asyncio.sleep(max(0.0, fault.at - self.clock()))
            record = await self._strike(fault)
            done.append(record)
            recoveries.append(asyncio.create_task(self._recovery(record)))

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
        return Done(fault, target, began, self.clock())

    async def _recovery(self, fault: Done) -> None:
        due = self.acknowledged()
        deadline = time.monotonic() + RECOVERY_LIMIT
        while time.monotonic() < deadline:
            stored = await self.stored()
            if stored is not None and stored >= due and not await self.fleet.not_ready():
                fault.recovered = self.clock()
                return
            await asyncio.sleep(0.5)
