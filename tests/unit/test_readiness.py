"""/readyz of every process: what each probe answers, asked at once."""

import asyncio

import pytest

from roadwatch.runtime import readiness as module
from roadwatch.runtime.readiness import NotReady, readiness


async def test_each_probe_answers_ok_its_reason_or_the_kind_of_failure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(module, "PROBE_WITHIN", 0.2)

    async def fine() -> None:
        return None

    async def stuck() -> None:
        raise NotReady("storing has failed for 31 s")

    async def away() -> None:
        raise ConnectionRefusedError("10.0.0.7:5432 password=hunter2")

    async def silent() -> None:
        await asyncio.sleep(3600)

    ready, answers = await asyncio.wait_for(
        readiness({"store": fine, "progress": stuck, "broker": away, "cache": silent}),
        timeout=2,
    )
    assert not ready
    assert answers == {
        "store": "ok",
        "progress": "storing has failed for 31 s",
        "broker": "unreachable: ConnectionRefusedError",
        "cache": "unreachable: TimeoutError",
    }
    assert await readiness({"store": fine}) == (True, {"store": "ok"})
