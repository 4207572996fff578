"""A transactional request the broker refuses as concurrent is tried again after 20 ms;
every other answer, whatever its error code, is handled as aiokafka handles it."""

from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.errors import ConcurrentTransactions, CoordinatorLoadInProgressError, NoError
from aiokafka.producer import sender
from aiokafka.protocol.transaction import (
    AddOffsetsToTxnResponse_v0,
    EndTxnResponse_v0,
    InitProducerIdResponse_v0,
)
from hypothesis import given
from hypothesis import strategies as st

from roadwatch.kafka.transaction_retries import CONCURRENT_BACKOFF, HANDLERS, install

AIOKAFKAS_BACKOFF = 0.1
# aiokafka's own handlers, whether or not the shorter wait is installed in this process yet.
ORIGINAL = {
    handler: getattr(handler.handle_response, "__wrapped__", handler.handle_response)
    for handler in HANDLERS
}


def _sender() -> SimpleNamespace:
    manager = SimpleNamespace(
        consumer_group_added=lambda group: None,
        complete_transaction=lambda: None,
        set_pid_and_epoch=lambda pid, epoch: None,
    )
    return SimpleNamespace(
        _retry_backoff=AIOKAFKAS_BACKOFF,
        _txn_manager=manager,
        _coordinator_dead=lambda kind: None,
        client=SimpleNamespace(_client_id="test"),
    )


ANSWERS: dict[str, tuple[Any, Any]] = {
    "InitProducerId": (
        lambda: sender.InitPIDHandler(_sender()),
        lambda code: InitProducerIdResponse_v0(0, code, 1, 0),
    ),
    "AddOffsetsToTxn": (
        lambda: sender.AddOffsetsToTxnHandler(_sender(), "group"),
        lambda code: AddOffsetsToTxnResponse_v0(0, code),
    ),
    "EndTxn": (
        lambda: sender.EndTxnHandler(_sender(), True),
        lambda code: EndTxnResponse_v0(0, code),
    ),
}


@pytest.mark.parametrize("request_name", ANSWERS)
def test_a_concurrent_refusal_is_retried_after_20_ms(request_name: str) -> None:
    install()
    installed = {handler: handler.handle_response for handler in HANDLERS}
    install()  # as each producer made asks: still one wrapper
    assert {handler: handler.handle_response for handler in HANDLERS} == installed
    make_handler, answer = ANSWERS[request_name]
    handler = make_handler()

    def backoff(error: Any) -> float | None:
        result: float | None = handler.handle_response(answer(error.errno))
        return result

    assert CONCURRENT_BACKOFF == 0.02
    assert backoff(ConcurrentTransactions) == CONCURRENT_BACKOFF
    assert backoff(CoordinatorLoadInProgressError) == AIOKAFKAS_BACKOFF
    assert backoff(NoError) is None


def _outcome(respond: Any, handler: Any, response: Any) -> tuple[str, Any]:
    try:
        return "returned", respond(handler, response)
    except Exception as error:  # what aiokafka raises for an error it does not retry
        return "raised", type(error)


@pytest.mark.parametrize("request_name", ANSWERS)
@given(code=st.integers(-(2**15), 2**15 - 1))
def test_any_error_code_a_broker_sends_is_handled_as_aiokafka_would(
    request_name: str, code: int
) -> None:
    install()
    make_handler, answer = ANSWERS[request_name]
    handler_class = type(make_handler())
    response = answer(code)

    ours = _outcome(handler_class.handle_response, make_handler(), response)
    theirs = _outcome(ORIGINAL[handler_class], make_handler(), response)

    if code == ConcurrentTransactions.errno:
        assert (theirs, ours) == (("returned", AIOKAFKAS_BACKOFF), ("returned", 0.02))
    else:
        assert ours == theirs
