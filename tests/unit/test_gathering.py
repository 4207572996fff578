"""Steps run together: their results in order, and a failure raised only once every step
has ended."""

import asyncio

import pytest

from roadwatch.runtime.gathering import all_ended


async def _after(seconds: float, value: int) -> int:
    await asyncio.sleep(seconds)
    return value


async def test_the_results_come_in_the_order_of_the_steps() -> None:
    assert await all_ended(_after(0.02, 1), _after(0, 2)) == [1, 2]


async def test_a_failure_is_raised_only_once_the_other_steps_have_ended() -> None:
    slow = asyncio.Event()

    async def fails() -> int:
        raise ConnectionResetError("refused")

    async def ends_late() -> int:
        await asyncio.sleep(0.05)
        slow.set()
        return 0

    with pytest.raises(ConnectionResetError):
        await all_ended(fails(), ends_late())
    assert slow.is_set()
