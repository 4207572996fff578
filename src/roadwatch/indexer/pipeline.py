"""Batches through a row of stages, in order, with the stages working at once.

Stage k works on batch n+1 while stage k+1 works on batch n, so waiting on the database for
one batch overlaps publishing the alerts of the one before and parsing the one after, while
every stage, the last (committing) included, still sees the batches in the order read.
A wide stage works on several batches at once; they still leave it in the order they came.

No batch waits in a queue between stages: a batch keeps its place in a stage until the next
stage has room for it, and `put` waits until the first has. Under load, records then wait in
the consumer and come out as one larger batch, instead of as many small ones that would each
wait their turn at every stage.
"""

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

T = TypeVar("T")
Stage = Callable[[T], Coroutine[Any, Any, None]]


class Wide(NamedTuple, Generic[T]):
    stage: Stage[T]
    width: int


class _Started(NamedTuple, Generic[T]):
    item: T
    work: "asyncio.Task[None]"


class OrderedPipeline(Generic[T]):
    def __init__(self, stages: Sequence[Stage[T] | Wide[T]]) -> None:
        self._stages = [stage if isinstance(stage, Wide) else Wide(stage, 1) for stage in stages]
        self._slots = [asyncio.Semaphore(width) for _, width in self._stages]
        # What each stage has started, in the order it came; None once closed.
        self._started: list[asyncio.Queue[_Started[T] | None]] = [asyncio.Queue() for _ in stages]
        self._group: asyncio.TaskGroup | None = None
        self._ready = asyncio.Event()
        self._unfinished = 0
        self._all_finished = asyncio.Event()
        self._all_finished.set()

    async def run(self) -> None:
        """Work until closed; a stage's exception stops every stage and is raised here."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                for index in range(len(self._stages)):
                    group.create_task(self._pass_on(index))
                self._ready.set()
        finally:
            # Stopped, maybe with batches unfinished: nothing more will finish, and whoever
            # waits for them (a rebalance) must not wait forever.
            self._all_finished.set()

    async def put(self, item: T) -> None:
        """Start `item` through the first stage, once the first stage has room for it."""
        await self._ready.wait()
        await self._slots[0].acquire()
        self._unfinished += 1
        self._all_finished.clear()
        self._start(0, item)

    async def close(self) -> None:
        """Let the batches already in finish, then end `run`."""
        await self._ready.wait()
        self._started[0].put_nowait(None)

    async def finished(self) -> None:
        """Return once every batch put in so far has been through every stage, or the
        pipeline has stopped without them."""
        await self._all_finished.wait()

    def _start(self, index: int, item: T) -> None:
        if self._group is None:
            raise RuntimeError("the pipeline is not running")
        work = self._group.create_task(self._stages[index].stage(item))
        self._started[index].put_nowait(_Started(item, work))

    async def _pass_on(self, index: int) -> None:
        """Take the stage's batches as they finish, in order, to the next stage."""
        last = index == len(self._stages) - 1
        while (started := await self._started[index].get()) is not None:
            await asyncio.wait([started.work])
            if started.work.exception() is not None:
                return  # the task group raises it and stops every stage
            if last:
                self._unfinished -= 1
                if not self._unfinished:
                    self._all_finished.set()
            else:
                await self._slots[index + 1].acquire()
                self._start(index + 1, started.item)
            self._slots[index].release()
        if not last:
            self._started[index + 1].put_nowait(None)
