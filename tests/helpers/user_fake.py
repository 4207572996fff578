"""An in-memory UserStore, held to the PostgreSQL store's contract by
tests/contract/test_user_store.py, for unit tests of the routes built on it."""

import dataclasses
import uuid
from datetime import UTC, datetime
from uuid import UUID

from roadwatch.domain import User
from roadwatch.stores.users import UsernameTaken, UserStore


class InMemoryUserStore(UserStore):
    def __init__(self) -> None:
        self._users: dict[UUID, tuple[User, str]] = {}

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def ping(self) -> None:
        pass

    async def create(self, *, username: str, password_hash: str, is_admin: bool) -> User:
        if await self.password_login(username) is not None:
            raise UsernameTaken(username)
        user = User(
            id=uuid.uuid4(), username=username, is_admin=is_admin, created_at=datetime.now(UTC)
        )
        self._users[user.id] = (user, password_hash)
        return user

    async def create_first(self, *, username: str, password_hash: str) -> User | None:
        if self._users:
            return None
        return await self.create(username=username, password_hash=password_hash, is_admin=True)

    async def has_users(self) -> bool:
        return bool(self._users)

    async def get(self, user_id: UUID) -> User | None:
        found = self._users.get(user_id)
        return None if found is None else found[0]

    async def password_login(self, username: str) -> tuple[User, str] | None:
        wanted = username.lower()
        return next(
            (found for found in self._users.values() if found[0].username.lower() == wanted),
            None,
        )

    async def password_hash(self, user_id: UUID) -> str | None:
        found = self._users.get(user_id)
        return None if found is None else found[1]

    async def list_users(self) -> list[User]:
        return sorted((u for u, _ in self._users.values()), key=lambda u: u.created_at)

    async def set_password(self, user_id: UUID, password_hash: str) -> User | None:
        return self._change(user_id, password_hash=password_hash)

    async def set_disabled(self, user_id: UUID, disabled: bool) -> User | None:
        return self._change(user_id, disabled=disabled)

    async def delete(self, user_id: UUID) -> bool:
        return self._users.pop(user_id, None) is not None

    def _change(
        self, user_id: UUID, *, password_hash: str | None = None, disabled: bool | None = None
    ) -> User | None:
        found = self._users.get(user_id)
        if found is None:
            return None
        user, current_hash = found
        user = dataclasses.replace(
            user,
            disabled=user.disabled if disabled is None else disabled,
            credentials_version=user.credentials_version + 1,
        )
        self._users[user_id] = (user, password_hash or current_hash)
        return user
