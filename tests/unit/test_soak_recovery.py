"""The soak's recovery times: one look at the system serves every fault waiting for it."""

import asyncio
from typing import cast

from soak.faults import RECOVERY_LIMIT, Done, Faults
from soak.fleet import Fleet
from soak.schedule import Planned
from soak.servers import SoakServers


class System:
    """Every process ready, and 25 detections stored, at the third look only."""

    def __init__(self) -> None:
        self.looks = 0

    async def stored(self) -> int | None:
        self.looks += 1
        return 25 if self.looks == 3 else 5

    async def not_ready(self) -> list[str]:
        return [] if self.looks == 3 else ["api-2"]


def _fault(repaired: float, due: int) -> Done:
    planned = Planned(at=0.0, track="api", kind="kill -9 api", target=1, down=1.0)
    return Done(planned, "api-2", began=0.0, repaired=repaired, due=due)


def test_one_moment_of_recovery_counts_for_every_fault_it_satisfies() -> None:
    system = System()
    faults = Faults(
        servers=cast(SoakServers, None),
        fleet=cast(Fleet, system),
        clock=lambda: float(system.looks),
        acknowledged=lambda: 0,
        stored=system.stored,
        look_every=0,
    )
    earlier, later, unmet = _fault(0.0, due=10), _fault(0.0, due=20), _fault(0.0, due=30)
    struck = asyncio.Event()
    struck.set()
    asyncio.run(faults._watch([earlier, later, unmet], struck))
    assert (earlier.recovered, later.recovered) == (3.0, 3.0)
    # Its detections were never all stored: it ran out of time.
    assert unmet.recovered is None
    assert system.looks >= RECOVERY_LIMIT
