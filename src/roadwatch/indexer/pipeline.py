"""Batches through a row of stages, in order, with the stages working at once.

Stage k works on batch n+1 while stage k+1 works on batch n, so waiting on the database for
one batch overlaps publishing the alerts of the one before and parsing the one after, while
every stage, the last (committing) included, still sees the batches in the order read.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
Stage = Callable[[T], Awaitable[None]]


class OrderedPipeline(Generic[T]):
    def __init__(self, stages: Sequence[Stage[T]]) -> None:
        self._stages = stages
        # One batch may wait before each stage: reading never runs far ahead of committing.
        self._queues: list[asyncio.Queue[T | None]] = [asyncio.Queue(maxsize=1) for _ in stages]
        self._unfinished = 0
        self._all_finished = asyncio.Event()
        self._all_finished.set()

    async def run(self) -> None:
        """Work until closed; a stage's exception stops every stage and is raised here."""
        async with asyncio.TaskGroup() as group:
            for index, stage in enumerate(self._stages):
                group.create_task(self._work(index, stage))

    async def put(self, item: T) -> None:
        self._unfinished += 1
        self._all_finished.clear()
        await self._queues[0].put(item)

    async def close(self) -> None:
        """Let the batches already in finish, then end `run`."""
        await self._queues[0].put(None)

    async def finished(self) -> None:
        """Return once every batch put in so far has been through every stage."""
        await self._all_finished.wait()

    async def _work(self, index: int, stage: Stage[T]) -> None:
        last = index == len(self._stages) - 1
        while (item := await self._queues[index].get()) is not None:
            await stage(item)
            if last:
                self._unfinished -= 1
                if not self._unfinished:
                    self._all_finished.set()
            else:
                await self._queues[index + 1].put(item)
        if not last:
            await self._queues[index + 1].put(None)
