"""The one seam through which every failure in the indexer passes, and what becomes of it.

After Kafka Connect's `errors.tolerance=all` and Quix Streams' processing-error callback:
- a record that cannot be decoded, for whatever reason, is rejected on its own (by
  parsing.parse_records, which never raises);
- a record that a step refuses for what it holds (RecordsRefused) is rejected on its own,
  found by halving the batch when the step cannot name it, and the rest go on;
- any other failure is the outside world's (a database or broker away, a deadlock), and
  the step is tried again with backoff for as long as it lasts. One that lasts longer than
  `stuck_after` is reported by `problem()`, which the indexer's readiness shows.

So no record, whatever its bytes, can stop the records behind it.
"""

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from roadwatch.domain import FromRecord
from roadwatch.rejections import RecordsRefused, RejectedMessage
from roadwatch.runtime.readiness import STUCK_AFTER
from roadwatch.runtime.retry import retry_until_done

log = logging.getLogger(__name__)

T = TypeVar("T")
Step = Callable[[Sequence[Any]], Awaitable[Sequence[FromRecord]]]
Refused = list[tuple[FromRecord, RejectedMessage]]


@dataclass
class _Failing:
    what: str
    since: float
    error: str


class ErrorPolicy:
    def __init__(self, *, stop: asyncio.Event, stuck_after: float = STUCK_AFTER) -> None:
        self._stop = stop
        self.stuck_after = stuck_after
        self._failing: dict[int, _Failing] = {}
        self._keys = itertools.count()

    async def retry(self, step: Callable[[], Awaitable[T]], *, what: str) -> T:
        """Run `step` until it succeeds, through any failure but RecordsRefused."""
        key = next(self._keys)

        def failed(error: Exception) -> None:
            failing = self._failing.setdefault(key, _Failing(what, time.monotonic(), ""))
            failing.error = f"{type(error).__name__}: {error}"[:300]

        try:
            return await retry_until_done(
                step, what=what, stop=self._stop, not_retried=(RecordsRefused,), on_failure=failed
            )
        finally:
            self._failing.pop(key, None)

    async def apply(
        self, step: Step, detections: Sequence[FromRecord], *, what: str
    ) -> tuple[Sequence[FromRecord], Refused]:
        """What `step` passes on of `detections`, and the detections it refused, with why."""
        if not detections:
            return [], []
        try:
            return await self.retry(lambda: step(detections), what=what), []
        except RecordsRefused as refused:
            culprits = {i: why for i, why in refused.culprits.items() if 0 <= i < len(detections)}
            if culprits:
                rest = [d for i, d in enumerate(detections) if i not in culprits]
                passing, more = await self.apply(step, rest, what=what)
                return passing, [(detections[i], why) for i, why in culprits.items()] + more
            if len(detections) == 1:
                return [], [(detections[0], RejectedMessage(refused.reason, refused.detail))]
            # The step could not say which records it refused: halve until it can.
            middle = len(detections) // 2
            passed_first, refused_first = await self.apply(step, detections[:middle], what=what)
            passed_last, refused_last = await self.apply(step, detections[middle:], what=what)
            return [*passed_first, *passed_last], refused_first + refused_last

    def problem(self) -> str | None:
        """What has kept failing for longer than the indexer may stall, if anything."""
        now = time.monotonic()
        stuck = [f for f in self._failing.values() if now - f.since > self.stuck_after]
        if not stuck:
            return None
        oldest = min(stuck, key=lambda f: f.since)
        return f"{oldest.what} has failed for {now - oldest.since:.0f} s: {oldest.error}"
