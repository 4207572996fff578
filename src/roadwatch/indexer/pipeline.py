"""Batches through a row of stages, in order, with the stages working at once.

Stage k works on batch n+1 while stage k+1 works on batch n, so waiting on the database for
one batch overlaps publishing the alerts of the one before and parsing the one after, while
every stage, the last (committing) included, still sees the batches in the order read.
A wide stage works on several batches at once; they still leave it in the order they came.
"""

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

T = TypeVar("T")
Stage = Callable[[T], Coroutine[Any, Any, None]]


class Wide(NamedTuple, Generic[T]):
    stage: Stage[T]
    width: int


class OrderedPipeline(Generic[T]):
    def __init__(self, stages: Sequence[Stage[T] | Wide[T]]) -> None:
        self._stages = [stage if isinstance(stage, Wide) else Wide(stage, 1) for stage in stages]
        # One batch may wait before each stage: reading never runs far ahead of committing.
        self._queues: list[asyncio.Queue[T | None]] = [asyncio.Queue(maxsize=1) for _ in stages]
        self._unfinished = 0
        self._all_finished = asyncio.Event()
        self._all_finished.set()

    async def run(self) -> None:
        """Work until closed; a stage's exception stops every stage and is raised here."""
        async with asyncio.TaskGroup() as group:
            for index, (stage, width) in enumerate(self._stages):
                # Started items pass from the one task to the other in the order they came.
                started: asyncio.Queue[tuple[T, asyncio.Task[None]] | None] = asyncio.Queue()
                slots = asyncio.Semaphore(width)
                group.create_task(self._start(index, stage, slots, started, group))
                group.create_task(self._finish(index, slots, started))

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

    async def _start(
        self,
        index: int,
        stage: Stage[T],
        slots: asyncio.Semaphore,
        started: "asyncio.Queue[tuple[T, asyncio.Task[None]] | None]",
        group: asyncio.TaskGroup,
    ) -> None:
        while True:
            # A free slot first: an item taken from the queue is one the stage works on now.
            await slots.acquire()
            item = await self._queues[index].get()
            if item is None:
                break
            started.put_nowait((item, group.create_task(stage(item))))
        started.put_nowait(None)

    async def _finish(
        self,
        index: int,
        slots: asyncio.Semaphore,
        started: "asyncio.Queue[tuple[T, asyncio.Task[None]] | None]",
    ) -> None:
        last = index == len(self._stages) - 1
        while (entry := await started.get()) is not None:
            item, work = entry
            await asyncio.wait([work])
            if work.exception() is not None:
                return  # the task group raises it and stops every stage
            slots.release()
            if last:
                self._unfinished -= 1
                if not self._unfinished:
                    self._all_finished.set()
            else:
                await self._queues[index + 1].put(item)
        if not last:
            await self._queues[index + 1].put(None)
