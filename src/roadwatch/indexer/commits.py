"""Committing offsets so that committing never sets the indexer's pace."""

import asyncio
from collections.abc import Awaitable, Callable

from roadwatch.kafka.types import OffsetAndMetadata, TopicPartition

Offsets = dict[TopicPartition, OffsetAndMetadata]


class CoalescingCommitter:
    """Commits the offsets of finished batches, in the order they finish.

    A commit is a round trip to the broker. Batches that finish while one is under way are
    committed together by the next: each call returns once its offsets are committed, by
    its own commit or by a later one that covered them.
    """

    def __init__(
        self,
        commit: Callable[[Offsets], Awaitable[None]],
        *,
        committed: Callable[[Offsets], None] = lambda _offsets: None,
    ) -> None:
        self._commit = commit
        self._committed = committed
        self._uncommitted: Offsets = {}
        self._lock = asyncio.Lock()
        # Calls counted in, and how many of them are committed.
        self._entered = 0
        self._committed_upto = 0

    async def __call__(self, offsets: Offsets) -> None:
        # Calls come in order, so a partition's offset here only moves forward.
        self._uncommitted.update(offsets)
        self._entered += 1
        mine = self._entered
        async with self._lock:
            if self._committed_upto < mine:
                pending, self._uncommitted = self._uncommitted, {}
                upto = self._entered
                try:
                    await self._commit(pending)
                except BaseException:
                    # Kept for the retry, or the next call: a partition whose batch failed
                    # here may see no other batch for a long time (and its alerts with it).
                    self._uncommitted = {**pending, **self._uncommitted}
                    raise
                self._committed_upto = upto
                self._committed(pending)
