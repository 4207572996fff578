"""Whether the system still awaits its first user, asked of the database only until it has one,
and the one-time token that creating that user takes.

No request of the API removes the last user (an administrator cannot delete themself), so
once a user exists this process remembers it, and an anonymous `POST /users` is refused
without a query. Before then, only whoever has the setup token (printed by `roadwatch api`
for the operator, as a link) may create the first user: an exposed new instance does not
go to whoever asks first.
"""

import hmac

from roadwatch.stores.users import UserStore


class SetupState:
    def __init__(self, users: UserStore, *, token: str | None) -> None:
        self._users = users
        self._token = token
        self._has_users = False

    def admits(self, given: str | None) -> bool:
        """Whether `given` is the setup token (none is, when none was set)."""
        if self._token is None or given is None:
            return False
        return hmac.compare_digest(given.encode(), self._token.encode())

    async def has_users(self) -> bool:
        if not self._has_users:
            self._has_users = await self._users.has_users()
        return self._has_users
