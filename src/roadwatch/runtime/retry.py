import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from roadwatch.errors import ConfigurationError, RoadwatchError
from roadwatch.kafka.check import refusal
from roadwatch.shutdown import sleep_until_stopped

log = logging.getLogger(__name__)

T = TypeVar("T")


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
    KafkaRefused. `on_failure` is told of each
    failure that is retried. A stop request ends the waiting with GaveUpOnShutdown:
    whatever the step would have done is redone from Kafka by the next run, since nothing
    was committed.
    """
    delay = first_delay
    failures = 0
    never: tuple[type[Exception], ...] = (*not_retried, ConfigurationError)
    while True:
        try:
            result = await step()
        except never:
            raise
        except Exception as error:
            refused = refusal(error)
            if refused is not None:
                raise refused from None
            failures += 1
            if on_failure is not None:
                on_failure(error)
            log.warning(
                "%s failed (%s: %s); trying again in %.1f s",
                what,
                type(error).__name__,
                _brief(error),
                delay,
                extra={"step": what, "failures": failures},
            )
            if stop.is_set():
                raise GaveUpOnShutdown(f"{what} still failing at shutdown") from error
            await sleep_until_stopped(stop, delay)
            delay = min(delay * 2, longest_delay)
            continue
        if failures:
            log.info("%s succeeded after %d failed attempt(s)", what, failures)
        return result


# A database error's text holds its whole statement and parameters: thousands of rows for a
# batch, repeated at every retry of an outage.
MAX_LOGGED_ERROR = 500


def _brief(error: Exception) -> str:
    text = str(getattr(error, "orig", None) or error)
    return text if len(text) <= MAX_LOGGED_ERROR else text[:MAX_LOGGED_ERROR] + "…"
