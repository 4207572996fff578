"""Waiting out an outage: a step tried again with backoff until it succeeds (tenacity), and
periodic work that a failure does not stop. A stop request ends every wait at once."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential

from roadwatch.errors import ConfigurationError, RoadwatchError
from roadwatch.kafka.check import refusal
from roadwatch.shutdown import sleep_until_stopped

log = logging.getLogger(__name__)

T = TypeVar("T")
# A database error's text holds its whole statement and parameters: thousands of rows for a
# batch, repeated at every retry of an outage.
MAX_LOGGED_ERROR = 500


class GaveUpOnShutdown(RoadwatchError):
    """Asked to stop while a step kept failing: the step is left undone, to be replayed."""


async def retry_until_done(
    step: Callable[[], Awaitable[T]],
    *,
    what: str,
    stop: asyncio.Event,
    first_delay: float = 0.2,
    longest_delay: float = 10.0,
    not_retried: tuple[type[Exception], ...] = (),
    on_failure: Callable[[Exception], None] | None = None,
) -> T:
    """Run `step` until it succeeds, waiting longer after each failure (an outage).

    Errors of the `not_retried` kinds are raised at once, as are those that time cannot
    mend: a ConfigurationError, and Kafka's refusals (an ACL missing), raised as
    KafkaRefused. `on_failure` is told of each failure that is retried. A stop request ends
    the waiting with GaveUpOnShutdown: whatever the step would have done is redone from
    Kafka by the next run, since nothing was committed.
    """

    async def attempt() -> T:
        try:
            return await step()
        except Exception as error:
            refused = refusal(error)
            if refused is not None:
                raise refused from None
            raise

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        assert isinstance(error, Exception)
        if on_failure is not None:
            on_failure(error)
        log.warning(
            "%s failed (%s: %s); trying again in %.1f s",
            what,
            type(error).__name__,
            _brief(error),
            state.upcoming_sleep,
            extra={"step": what, "failures": state.attempt_number},
        )
        if stop.is_set():
            raise GaveUpOnShutdown(f"{what} still failing at shutdown") from error

    never = (*not_retried, ConfigurationError)
    retrying = AsyncRetrying(
        # Failures only: a cancellation (a BaseException) ends the step, and the waiting.
        retry=retry_if_exception(
            lambda error: isinstance(error, Exception) and not isinstance(error, never)
        ),
        wait=wait_exponential(multiplier=first_delay, max=longest_delay),
        sleep=lambda seconds: sleep_until_stopped(stop, seconds),
        before_sleep=before_sleep,
        reraise=True,
    )
    result: T = await retrying(attempt)
    failures = retrying.statistics.get("attempt_number", 1) - 1
    if failures:
        log.info("%s succeeded after %d failed attempt(s)", what, failures)
    return result


async def every(
    seconds: float,
    step: Callable[[], Awaitable[object]],
    *,
    what: str,
    stop: asyncio.Event | None = None,
) -> None:
    """Run `step` now and then every `seconds`, until stopped (or cancelled). A failure is
    logged and waits for the next turn: periodic work outlives an outage."""
    while stop is None or not stop.is_set():
        try:
            await step()
        except Exception as error:
            log.warning(
                "%s failed (%s: %s); trying again in %.0f s",
                what,
                type(error).__name__,
                _brief(error),
                seconds,
            )
        if stop is None:
            await asyncio.sleep(seconds)
        else:
            await sleep_until_stopped(stop, seconds)


def _brief(error: Exception) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text if len(text) <= MAX_LOGGED_ERROR else text[:MAX_LOGGED_ERROR] + "…"
