"""The users that recent requests authenticated as, so that a token check costs no query."""

import time
from collections.abc import Callable
from typing import Protocol
from uuid import UUID

from roadwatch.domain import User

# A user disabled, deleted or given a new password keeps their access for at most this
# long, here or in another API process; in the process that made the change, not at all.
REMEMBER_SECONDS = 10.0
MAX_REMEMBERED = 10_000


class UserLookup(Protocol):
    async def get(self, user_id: UUID) -> User | None: ...


class RecentUsers:
    def __init__(
        self,
        store: UserLookup,
        *,
        seconds: float = REMEMBER_SECONDS,
        max_users: int = MAX_REMEMBERED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._seconds = seconds
        self._max_users = max_users
        self._clock = clock
        self._users: dict[UUID, tuple[float, User]] = {}

    async def get(self, user_id: UUID) -> User | None:
        now = self._clock()
        remembered = self._users.get(user_id)
        if remembered is not None and remembered[0] > now:
            return remembered[1]
        user = await self._store.get(user_id)
        self._users.pop(user_id, None)
        if user is not None:
            if len(self._users) >= self._max_users:
                # The first entry is the one looked up longest ago.
                del self._users[next(iter(self._users))]
            self._users[user_id] = (now + self._seconds, user)
        return user

    def forget(self, user_id: UUID) -> None:
        """Read the user afresh next time: they changed here."""
        self._users.pop(user_id, None)
