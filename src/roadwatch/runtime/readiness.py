"""Whether a process does its work: what each of its probes answers, for /readyz."""

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from roadwatch.errors import RoadwatchError

# A step still failing after this long makes the process not ready.
STUCK_AFTER = 30.0
# A probe that has not answered by then counts as unreachable.
PROBE_WITHIN = 2.0

Probe = Callable[[], Awaitable[None]]


class NotReady(RoadwatchError):
    """The process is alive but not doing its work; the message says why."""


async def readiness(probes: Mapping[str, Probe]) -> tuple[bool, dict[str, str]]:
    """Whether every probe answers, and what each said: "ok", what a NotReady says, or
    "unreachable" and the kind of error (never its text, which may name a server's
    address or a credential). The probes are asked at once."""
    answers = await asyncio.gather(*(_answer(probe) for probe in probes.values()))
    results = dict(zip(probes, answers, strict=True))
    return all(answer == "ok" for answer in answers), results


async def _answer(probe: Probe) -> str:
    try:
        await asyncio.wait_for(probe(), timeout=PROBE_WITHIN)
    except NotReady as not_ready:
        return str(not_ready)
    except Exception as error:
        return f"unreachable: {type(error).__name__}"
    return "ok"
