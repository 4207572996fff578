"""roadwatch's Kafka producer: aiokafka's, with a stop that reads what its sender left unread.

When a producer's sender fails for good (fenced by a newer producer of its transactional id,
its sequence numbers refused), aiokafka sets the failure on the drain waiter of every batch
it still holds and on its transaction's waiter. Nothing awaits those once the producer is
let go, and asyncio logs each, as it collects it, as "Future exception was never retrieved":
an ERROR with a traceback for what roadwatch handles as a matter of course (an indexer that
takes a partition over fences its previous holder). The failure itself reaches roadwatch
through the futures it awaits: the sends and the transaction's calls.
"""

import itertools
from typing import Any

from roadwatch.kafka.types import AIOKafkaProducer


class Producer(AIOKafkaProducer):  # type: ignore[misc]
    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            _read_failures(self)


def _read_failures(producer: Any) -> None:
    """Mark as read the failures left on the producer's internal waiters (aiokafka 0.14's
    names; a later aiokafka without them leaves them to asyncio's log, as before)."""
    accumulator = getattr(producer, "_message_accumulator", None)
    batches = itertools.chain(
        itertools.chain.from_iterable(getattr(accumulator, "_batches", {}).values()),
        getattr(accumulator, "_pending_batches", ()),
    )
    waiters = [getattr(batch, "_drain_waiter", None) for batch in batches]
    transactions = getattr(producer, "_txn_manager", None)
    waiters.append(getattr(transactions, "_transaction_waiter", None))
    for waiter in waiters:
        if waiter is not None and waiter.done() and not waiter.cancelled():
            waiter.exception()
