"""Whether the system still awaits its first user, asked of the database only until it has one.

No request of the API removes the last user (an administrator cannot delete themself), so
once a user exists this process remembers it, and an anonymous `POST /users` is refused
without a query.
"""

from roadwatch.stores.users import UserStore


class SetupState:
    def __init__(self, users: UserStore) -> None:
        self._users = users
        self._has_users = False

    async def has_users(self) -> bool:
        if not self._has_users:
            self._has_users = await self._users.has_users()
        return self._has_users
