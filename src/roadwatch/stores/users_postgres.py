import uuid
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from roadwatch.domain import User
from roadwatch.stores.sql import MigratedDatabase
from roadwatch.stores.users import UsernameTaken, UserStore

PASSWORD = "password"  # noqa: S105 - the kind of credential, not one

metadata = sa.MetaData()
users = sa.Table(
    "users",
    metadata,
    sa.Column("id", PG_UUID(as_uuid=True), primary_key=True),
    sa.Column("username", sa.Text, nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False),
    sa.Column("credentials_version", sa.Integer, nullable=False),
)
credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("id", PG_UUID(as_uuid=True), primary_key=True),
    sa.Column("user_id", PG_UUID(as_uuid=True), nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("secret_hash", sa.Text, nullable=False),
)


class PostgresUserStore(MigratedDatabase, UserStore):
    def __init__(self, url: str, *, query_timeout: float | None = None) -> None:
        super().__init__(url, migrations="users", query_timeout=query_timeout)

    async def create(self, *, username: str, password_hash: str, is_admin: bool) -> User:
        async with self.writing() as connection:
            return await _insert(connection, username, password_hash, is_admin=is_admin)

    async def create_first(self, *, username: str, password_hash: str) -> User | None:
        async with self.writing() as connection:
            # Two first users racing: the lock makes the second one see the first.
            await connection.execute(sa.text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))
            if await _any_user(connection):
                return None
            return await _insert(connection, username, password_hash, is_admin=True)

    async def has_users(self) -> bool:
        async with self.reading() as connection:
            return await _any_user(connection)

    async def get(self, user_id: UUID) -> User | None:
        async with self.reading() as connection:
            row = (await connection.execute(users.select().where(users.c.id == user_id))).first()
        return None if row is None else _user(row._mapping)

    async def password_login(self, username: str) -> tuple[User, str] | None:
        query = (
            sa.select(users, credentials.c.secret_hash)
            .join(credentials, credentials.c.user_id == users.c.id)
            .where(
                sa.func.lower(users.c.username) == sa.func.lower(username),
                credentials.c.kind == PASSWORD,
            )
        )
        async with self.reading() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else (_user(row._mapping), row.secret_hash)

    async def password_hash(self, user_id: UUID) -> str | None:
        query = sa.select(credentials.c.secret_hash).where(
            credentials.c.user_id == user_id, credentials.c.kind == PASSWORD
        )
        async with self.reading() as connection:
            found: str | None = (await connection.execute(query)).scalar_one_or_none()
        return found

    async def list_users(self) -> list[User]:
        query = users.select().order_by(users.c.created_at, users.c.id)
        async with self.reading() as connection:
            rows = (await connection.execute(query)).mappings().all()
        return [_user(row) for row in rows]

    async def set_password(self, user_id: UUID, password_hash: str) -> User | None:
        async with self.writing() as connection:
            user = await _next_version(connection, user_id)
            if user is not None:
                await connection.execute(
                    credentials.update()
                    .where(credentials.c.user_id == user_id, credentials.c.kind == PASSWORD)
                    .values(secret_hash=password_hash)
                )
        return user

    async def set_disabled(self, user_id: UUID, disabled: bool) -> User | None:
        async with self.writing() as connection:
            return await _next_version(connection, user_id, disabled=disabled)

    async def delete(self, user_id: UUID) -> bool:
        async with self.writing() as connection:
            result = await connection.execute(users.delete().where(users.c.id == user_id))
        return bool(result.rowcount)


async def _next_version(
    connection: AsyncConnection, user_id: UUID, **changes: object
) -> User | None:
    """Apply the changes and move the user's credentials version on, in one statement."""
    row = (
        await connection.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(credentials_version=users.c.credentials_version + 1, **changes)
            .returning(users)
        )
    ).first()
    return None if row is None else _user(row._mapping)


async def _any_user(connection: AsyncConnection) -> bool:
    return (await connection.execute(sa.select(sa.exists().select_from(users)))).scalar_one()


async def _insert(
    connection: AsyncConnection, username: str, password_hash: str, *, is_admin: bool
) -> User:
    user_id = uuid.uuid4()
    try:
        async with connection.begin_nested():
            row = (
                await connection.execute(
                    users.insert()
                    .values(
                        id=user_id,
                        username=username,
                        is_admin=is_admin,
                        created_at=sa.func.now(),
                        disabled=False,
                        credentials_version=0,
                    )
                    .returning(users)
                )
            ).one()
    except IntegrityError:
        raise UsernameTaken(username) from None
    await connection.execute(
        credentials.insert().values(
            id=uuid.uuid4(), user_id=user_id, kind=PASSWORD, secret_hash=password_hash
        )
    )
    return _user(row._mapping)


def _user(row: Any) -> User:
    return User(
        id=row["id"],
        username=row["username"],
        is_admin=row["is_admin"],
        created_at=row["created_at"],
        disabled=row["disabled"],
        credentials_version=row["credentials_version"],
    )
