from abc import ABC, abstractmethod
from uuid import UUID

from roadwatch.domain import User
from roadwatch.errors import Conflict


class UsernameTaken(Conflict):
    def __init__(self, username: str) -> None:
        super().__init__(username)
        self.username = username

    def __str__(self) -> str:
        return f"the username {self.username!r} is taken"


class UserStore(ABC):
    """Users and their credentials."""

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> None: ...

    @abstractmethod
    async def create(self, *, username: str, password_hash: str, is_admin: bool) -> User:
        """Raise UsernameTaken if the name is in use."""

    @abstractmethod
    async def create_first(self, *, username: str, password_hash: str) -> User | None:
        """Create an administrator if, and only if, there is no user yet; else None."""

    @abstractmethod
    async def has_users(self) -> bool: ...

    @abstractmethod
    async def get(self, user_id: UUID) -> User | None: ...

    @abstractmethod
    async def password_login(self, username: str) -> tuple[User, str] | None:
        """The user of that name (whatever its case) and their password hash, if both exist."""

    @abstractmethod
    async def password_hash(self, user_id: UUID) -> str | None: ...

    @abstractmethod
    async def list_users(self) -> list[User]:
        """Every user, oldest first."""

    @abstractmethod
    async def set_password(self, user_id: UUID, password_hash: str) -> User | None:
        """Replace the password; the user's older tokens stop working. None: no such user."""

    @abstractmethod
    async def set_disabled(self, user_id: UUID, disabled: bool) -> User | None:
        """Disable (or enable) the user; a disabled user's tokens stop working."""

    @abstractmethod
    async def delete(self, user_id: UUID) -> bool:
        """Remove the user and their credentials; False if there was no such user."""
