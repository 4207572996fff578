"""When a failed delivery is tried again, and when it is given up."""

import enum
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    # Failed, and tried again later.
    RETRY = "retry"
    # Failed for good: refused by the receiver, or out of time; dead-lettered.
    FAILED = "failed"


# Statuses that mean "later may work"; every other 4xx says the request itself is refused.
RETRIED_CLIENT_ERRORS = frozenset({408, 409, 429})


def is_retried(status: int | None) -> bool:
    """Whether a failed attempt with this HTTP status (None: no response) may be retried."""
    if status is None or status >= 500:
        return True
    return status in RETRIED_CLIENT_ERRORS


@dataclass(frozen=True)
class RetrySchedule:
    """Exponential backoff with jitter: about `first` seconds after the first failure,
    doubling up to `longest`, for `give_up_after` seconds from the delivery's creation.

    The defaults try about 34 times over a day; the last attempt is made after a day has
    passed, so a receiver down for up to 24 hours still gets everything.
    """

    first: float = 5.0
    longest: float = 3600.0
    give_up_after: float = 24 * 3600.0

    def delay(self, attempts: int, *, retry_after: float | None = None) -> float:
        """Seconds to wait after the `attempts`-th failed attempt (1 for the first)."""
        backoff = min(self.longest, self.first * 2 ** min(attempts - 1, 40))
        # Half fixed, half random: failures of one outage spread out instead of returning
        # together, and no wait is shorter than half the backoff.
        delay: float = backoff / 2 + random.uniform(0, backoff / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.longest))
        return delay

    def gives_up(self, created_at: datetime, now: datetime) -> bool:
        return (now - created_at).total_seconds() >= self.give_up_after


def retry_after_seconds(header: str | None, *, now: datetime | None = None) -> float | None:
    """A Retry-After header in seconds (it may be a number or an HTTP date); None if absent
    or unreadable."""
    if not header:
        return None
    header = header.strip()
    # ASCII only: str.isdigit also takes other scripts' digits, and superscripts, which
    # float() refuses.
    if header.isascii() and header.isdigit():
        return float(header)
    try:
        when = parsedate_to_datetime(header)
    except Exception:
        # A receiver's header may hold anything; what is not a date is no date.
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    except OverflowError:
        return None
