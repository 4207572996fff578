"""Writes attempts and held deliveries to the database in batches, and says when each is
durable: only then may the alert's offset be committed."""

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from roadwatch.rejections import RecordsRefused
from roadwatch.runtime.retry import retry_until_done
from roadwatch.webhooks.store import Attempt, DeliveryQueue
from roadwatch.webhooks.subscriptions import Delivery

log = logging.getLogger(__name__)

Done = Callable[[], None]


@dataclass
class _Buffer:
    attempts: list[Attempt] = field(default_factory=list)
    held: list[Delivery] = field(default_factory=list)
    done: list[Done] = field(default_factory=list)


class Recorder:
    def __init__(
        self,
        store: DeliveryQueue,
        *,
        stop: asyncio.Event,
        interval: float = 0.05,
        max_batch: int = 5000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._clock = clock
        # Since when writing has failed without a success since; None while it works.
        self._failing_since: float | None = None
        # Since when the write under way has been going; None between writes.
        self._writing_since: float | None = None
        self._stop = stop
        self._interval = interval
        self._max_batch = max_batch
        self._buffer = _Buffer()
        self._wake = asyncio.Event()
        self._stopping = False

    def add(self, attempt: Attempt) -> None:
        self._buffer.attempts.append(attempt)
        self._queued(attempt.delivery.settle)

    def hold(self, deliveries: Sequence[Delivery]) -> None:
        """Keep these for a later attempt, from the database."""
        self._buffer.held.extend(deliveries)
        for delivery in deliveries:
            self._queued(delivery.settle)

    def failing_for(self) -> float:
        """Seconds that writing has failed without a success since (0 while it works)."""
        return 0.0 if self._failing_since is None else self._clock() - self._failing_since

    def unanswered_for(self) -> float:
        """Seconds the write under way has gone on, failing or not answering at all (a
        database gone silent mid-request raises nothing); 0 between writes."""
        return 0.0 if self._writing_since is None else self._clock() - self._writing_since

    @property
    def backlog(self) -> int:
        return len(self._buffer.attempts) + len(self._buffer.held)

    async def run(self) -> None:
        """Flush every `interval` s (at once when `max_batch` wait), until closed and empty."""
        while True:
            if not self.backlog:
                if self._stopping:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            if not self._stopping and self.backlog < self._max_batch:
                await asyncio.sleep(self._interval)
            await self._flush()

    def close(self) -> None:
        self._stopping = True
        self._wake.set()

    def _failed(self, _error: Exception) -> None:
        if self._failing_since is None:
            self._failing_since = self._clock()

    def _queued(self, done: Done | None) -> None:
        if done is not None:
            self._buffer.done.append(done)
        self._wake.set()

    async def _flush(self) -> None:
        buffer, self._buffer = self._buffer, _Buffer()
        self._writing_since = self._clock()
        try:
            await self._write(buffer.held, buffer.attempts)
        except RecordsRefused as refused:
            # Refused for what one of them holds, which waiting cannot mend: the others are
            # recorded without it.
            log.error("recording webhook deliveries was refused (%s); one by one now", refused)
            for delivery in buffer.held:
                await self._write_alone([delivery], [])
            for attempt in buffer.attempts:
                await self._write_alone([], [attempt])
        finally:
            self._writing_since = None
        self._failing_since = None
        for done in buffer.done:
            done()

    async def _write(self, held: Sequence[Delivery], attempts: Sequence[Attempt]) -> None:
        async def write() -> None:
            await self._store.enqueue(held)
            await self._store.record(attempts)

        # A database outage holds the records here, and the offsets uncommitted, until it
        # ends; on shutdown they are dropped and the alerts replayed by the next start.
        await retry_until_done(
            write,
            what="recording webhook deliveries",
            stop=self._stop,
            on_failure=self._failed,
            not_retried=(RecordsRefused,),
        )

    async def _write_alone(self, held: list[Delivery], attempts: list[Attempt]) -> None:
        try:
            await self._write(held, attempts)
            return
        except RecordsRefused as refused:
            problem = refused
        if attempts:
            # The attempt happened: kept without the words that were refused.
            bare = [dataclasses.replace(a, error="an answer the store refused") for a in attempts]
            try:
                await self._write([], bare)
                return
            except RecordsRefused as refused:
                problem = refused
        log.error("dropped a webhook record that the database refuses: %s", problem)
