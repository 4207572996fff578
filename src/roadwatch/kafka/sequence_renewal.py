"""An idempotent producer numbered afresh after a batch it lost for good.

aiokafka numbers each partition's batches for the broker, which takes a partition's batches
in that order only. A batch refused for good (too large for its topic, a record the topic
will not take) leaves a gap: the broker then refuses every later batch of that partition as
out of order (OutOfOrderSequenceNumber), for as long as the producer lives
(aio-libs/aiokafka#1017). The Java client bumps its epoch and numbers again from zero
(KIP-360). `install` gives aiokafka's idempotent producers the same: after a batch lost for
good, the producer asks for a new producer id before its next batch, and numbers every
partition from zero. Transactional producers are left alone: a failed transaction lets its
producer go (indexer/transactions.py).
"""

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.producer import sender
from aiokafka.producer.transaction_manager import (
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    PidAndEpoch,
    TransactionManager,
)
from aiokafka.util import create_future

log = logging.getLogger(__name__)

Do = Callable[[Any, int], Awaitable[None]]


def lost(batches: dict[Any, Any]) -> list[str]:
    """The partitions whose batch of the request failed (one to be tried again is pending)."""
    return sorted(
        str(tp)
        for tp, batch in batches.items()
        if batch.future.done() and not batch.future.cancelled() and batch.future.exception()
    )


def renew(manager: TransactionManager) -> None:
    """No producer id, and every partition numbered from zero: the sender asks the broker for
    a new id before the next batch it drains."""
    manager._pid_and_epoch = PidAndEpoch(NO_PRODUCER_ID, NO_PRODUCER_EPOCH)
    manager._pid_waiter = create_future()
    manager._sequence_numbers.clear()


def _renewing(do: Do) -> Do:
    # wraps() keeps aiokafka's own as __wrapped__: the mark that it is installed.
    @functools.wraps(do)
    async def renewing_do(handler: Any, node_id: int) -> None:
        manager: TransactionManager | None = handler._sender._txn_manager
        idempotent = manager is not None and manager.transactional_id is None
        pid = manager.producer_id if manager is not None else None
        await do(handler, node_id)
        # Once a producer: another request's loss may have renewed it already.
        if idempotent and manager is not None and manager.producer_id == pid:
            gaps = lost(handler._batches)
            if gaps:
                log.warning(
                    "a batch for %s was lost for good: numbering the producer's batches "
                    "afresh, under a new producer id",
                    ", ".join(gaps),
                )
                renew(manager)

    return renewing_do


def install() -> None:
    """Make every idempotent producer of this process renew its numbering after a loss."""
    handler = sender.SendProduceReqHandler
    if not hasattr(handler.do, "__wrapped__"):
        handler.do = _renewing(handler.do)
