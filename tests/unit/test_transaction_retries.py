"""A transactional request the broker refuses as concurrent is tried again after 20 ms;
every other refusal keeps aiokafka's backoff."""

from types import SimpleNamespace

import pytest
from aiokafka.errors import ConcurrentTransactions, CoordinatorLoadInProgressError, NoError
from aiokafka.producer import sender
from aiokafka.protocol.transaction import AddOffsetsToTxnResponse_v0, EndTxnResponse_v0

from roadwatch.kafka.transaction_retries import CONCURRENT_BACKOFF, install

AIOKAFKAS_BACKOFF = 0.1


def _sender() -> SimpleNamespace:
    manager = SimpleNamespace(
        consumer_group_added=lambda group: None, complete_transaction=lambda: None
    )
    return SimpleNamespace(_retry_backoff=AIOKAFKAS_BACKOFF, _txn_manager=manager)


def _handlers() -> list[tuple[object, type]]:
    return [
        (sender.AddOffsetsToTxnHandler(_sender(), "group"), AddOffsetsToTxnResponse_v0),
        (sender.EndTxnHandler(_sender(), True), EndTxnResponse_v0),
    ]


@pytest.mark.parametrize("index", [0, 1], ids=["AddOffsetsToTxn", "EndTxn"])
def test_a_concurrent_refusal_is_retried_after_20_ms(index: int) -> None:
    install()
    install()  # twice, as each producer made asks: still one wrapper
    handler, response = _handlers()[index]

    def backoff(error: type) -> float | None:
        result: float | None = handler.handle_response(response(0, error.errno))  # type: ignore[attr-defined]
        return result

    assert CONCURRENT_BACKOFF == 0.02
    assert backoff(ConcurrentTransactions) == CONCURRENT_BACKOFF
    assert backoff(CoordinatorLoadInProgressError) == AIOKAFKAS_BACKOFF
    assert backoff(NoError) is None
