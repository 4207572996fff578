"""The users that recent requests authenticated as, so that a token check costs no query."""

import time
from collections.abc import Callable
from typing import Protocol
from uuid import UUID

from cachetools import TTLCache

from roadwatch.domain import User

# A user disabled, deleted or given a new password keeps their access for at most this
# long, here or in another API process; in the process that made the change, not at all.
REMEMBER_SECONDS = 10.0
MAX_REMEMBERED = 10_000


class UserLookup(Protocol):
    async def get(self, user_id: UUID) -> User | None: ...


class RecentUsers:
    """The users looked up in the last `seconds`, at most `max_users` of them (the one looked
    up longest ago goes first); an unknown user is never remembered."""

    def __init__(
        self,
        store: UserLookup,
        *,
        seconds: float = REMEMBER_SECONDS,
        max_users: int = MAX_REMEMBERED,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._users: TTLCache[UUID, User] = TTLCache(maxsize=max_users, ttl=seconds, timer=clock)

    async def get(self, user_id: UUID) -> User | None:
        remembered = self._users.get(user_id)
        if remembered is not None:
            return remembered
        user = await self._store.get(user_id)
        if user is not None:
            self._users[user_id] = user
        return user

    def forget(self, user_id: UUID) -> None:
        """Read the user afresh next time: they changed here."""
        self._users.pop(user_id, None)
