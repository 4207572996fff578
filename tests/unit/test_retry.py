"""Retrying through an outage, and periodic work: what every process waits out failures by."""

import asyncio
import logging

import pytest
from aiokafka.errors import TopicAuthorizationFailedError

from roadwatch.errors import ConfigurationError
from roadwatch.kafka.check import KafkaRefused
from roadwatch.rejections import RecordsRefused
from roadwatch.runtime.retry import GaveUpOnShutdown, every, retry_until_done


class Flaky:
    """Fails `failures` times with `error`, then answers 42."""

    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.calls = 0
        self._failures = failures
        self._error = error or ConnectionError("the database is away")

    async def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self._failures:
            raise self._error
        return 42


async def test_a_step_is_tried_until_it_succeeds_each_failure_told(
    caplog: pytest.LogCaptureFixture,
) -> None:
    step, told = Flaky(3), list[Exception]()
    with caplog.at_level(logging.INFO):
        result = await retry_until_done(
            step,
            what="saving",
            stop=asyncio.Event(),
            first_delay=0.001,
            longest_delay=0.004,
            on_failure=told.append,
        )
    assert (result, step.calls, len(told)) == (42, 4, 3)
    waits = [r.getMessage() for r in caplog.records if "trying again in" in r.getMessage()]
    assert len(waits) == 3
    assert "saving succeeded after 3 failed attempt(s)" in caplog.text


@pytest.mark.parametrize(
    "error", [ConfigurationError("no such role"), RecordsRefused("bad record")]
)
async def test_what_time_cannot_mend_is_raised_at_once(error: Exception) -> None:
    step = Flaky(5, error)
    with pytest.raises(type(error)):
        await retry_until_done(
            step, what="saving", stop=asyncio.Event(), not_retried=(RecordsRefused,)
        )
    assert step.calls == 1


async def test_a_kafka_refusal_is_raised_at_once_as_one() -> None:
    step = Flaky(5, TopicAuthorizationFailedError())
    with pytest.raises(KafkaRefused, match="Kafka refused"):
        await retry_until_done(step, what="publishing", stop=asyncio.Event())
    assert step.calls == 1


async def test_a_stop_ends_the_waiting_at_once() -> None:
    stop, failed = asyncio.Event(), asyncio.Event()
    step = Flaky(1_000_000)
    retrying = asyncio.create_task(
        retry_until_done(
            step,
            what="saving",
            stop=stop,
            first_delay=30,
            longest_delay=30,
            on_failure=lambda _error: failed.set(),
        )
    )
    # Once the first failure is told, the retry is waiting out its 30 s.
    await asyncio.wait_for(failed.wait(), timeout=5)
    stop.set()
    with pytest.raises(GaveUpOnShutdown):
        await asyncio.wait_for(retrying, timeout=5)
    assert step.calls <= 2


async def test_periodic_work_outlives_its_failures_and_ends_with_the_stop() -> None:
    stop = asyncio.Event()
    step = Flaky(2)

    async def counted() -> None:
        if await step() == 42 and step.calls >= 4:
            stop.set()

    await asyncio.wait_for(every(0.001, counted, what="upkeep", stop=stop), timeout=5)
    assert step.calls == 4


async def test_a_cancellation_is_never_retried() -> None:
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(3600)

    retrying = asyncio.create_task(retry_until_done(forever, what="waiting", stop=asyncio.Event()))
    await started.wait()
    retrying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(retrying, timeout=5)
