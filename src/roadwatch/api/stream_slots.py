"""How many /alerts streams may be open: so many per user, and so many in all, below what
the process may hold open. One user's streams never take another's, nor the files that the
health checks, the database and the broker need."""

import resource
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from uuid import UUID

from roadwatch.errors import Throttled

# Files kept back from streams for everything else: the database pools, Kafka's
# connections, the health checks and logins, and sockets on their way to being closed.
RESERVED_FILES = 256
# How long a client refused is told to wait before it tries again.
RETRY_AFTER_SECONDS = 5


class TooManyStreams(Throttled):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = RETRY_AFTER_SECONDS

    def __str__(self) -> str:
        return f"too many alert streams open: {self.reason}; try again later"


def streams_the_process_can_hold(reserved: int = RESERVED_FILES) -> int:
    """What the open-file limit (the soft RLIMIT_NOFILE) leaves for streams: each takes
    one socket."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(1, soft - reserved)


@dataclass
class Slot:
    """One stream's place; given back once, however often `release` is called."""

    _slots: "StreamSlots"
    user: UUID
    _held: bool = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._slots._give_back(self.user)


@dataclass
class StreamSlots:
    per_user: int
    total: int
    # Told how many places are taken, at every change (a gauge's `set`).
    changed: Callable[[int], None] = lambda _open: None
    _open: Counter[UUID] = field(default_factory=Counter)

    @property
    def open(self) -> int:
        return self._open.total()

    def take(self, user: UUID) -> Slot:
        """A place for a stream of `user`'s; TooManyStreams if either cap is reached."""
        if self._open[user] >= self.per_user:
            raise TooManyStreams(f"this user has {self.per_user}, the most one may")
        if self.open >= self.total:
            raise TooManyStreams(f"this server has {self.total}, the most it holds")
        self._open[user] += 1
        self.changed(self.open)
        return Slot(self, user)

    def _give_back(self, user: UUID) -> None:
        self._open[user] -= 1
        if self._open[user] <= 0:
            del self._open[user]
        self.changed(self.open)
