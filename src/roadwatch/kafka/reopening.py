"""A consumer that a follower reopens after any failure, to resume where it stopped: the
alert feed and the watchlist follower read their topics through one."""

import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka import AIOKafkaConsumer

T = TypeVar("T")


class ReopeningConsumer:
    def __init__(self, open_consumer: Callable[[], Awaitable[AIOKafkaConsumer]]) -> None:
        """`open_consumer` gives a started consumer at the follower's positions."""
        self._open = open_consumer
        self.current: AIOKafkaConsumer | None = None

    def adopt(self, consumer: AIOKafkaConsumer) -> None:
        """Use a consumer opened already (at start, where a failure must be raised)."""
        self.current = consumer

    async def use(self, work: Callable[[AIOKafkaConsumer], Awaitable[T]]) -> T:
        """`work` on the consumer, opened first if there is none; on any failure the
        consumer is closed, for the next use to open afresh, and the failure raised."""
        try:
            if self.current is None:
                self.current = await self._open()
            return await work(self.current)
        except Exception:
            if self.current is not None:
                with contextlib.suppress(Exception):
                    await self.current.stop()
                self.current = None
            raise

    async def close(self) -> None:
        if self.current is not None:
            consumer, self.current = self.current, None
            await consumer.stop()
