"""Steps run together, every one ended before a failure is raised: a step still running
when the work is tried again would run beside its retry."""

import asyncio
from collections.abc import Awaitable
from typing import TypeVar, cast

T = TypeVar("T")


async def all_ended(*steps: Awaitable[T]) -> list[T]:
    """The results of `steps`, in order; once all have ended, the first failure raised."""
    outcomes = await asyncio.gather(*steps, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return cast(list[T], outcomes)
