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
    def __init__(self, url: str) -> None:
        super().__init__(url, migrations="users")

    async def create(self, *, username: str, password_hash: str, is_admin: bool) -> User:
        async with self.engine.begin() as connection:
            return await _insert(connection, username, password_hash, is_admin=is_admin)

    async def create_first(self, *, username: str, password_hash: str) -> User | None:
        async with self.engine.begin() as connection:
            # Two first users racing: the lock makes the second one see the first.
            await connection.execute(sa.text("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE"))
            if await _any_user(connection):
                return None
            return await _insert(connection, username, password_hash, is_admin=True)

    async def has_users(self) -> bool:
        async with self.engine.connect() as connection:
            return await _any_user(connection)

    async def get(self, user_id: UUID) -> User | None:
        async with self.engine.connect() as connection:
            row = (await connection.execute(users.select().where(users.c.id == user_id))).first()
        return None if row is None else _user(row._mapping)

    async def password_login(self, username: str) -> tuple[User, str] | None:
        query = (
            sa.select(users, credentials.c.secret_hash)
            .join(credentials, credentials.c.user_id == users.c.id)
            .where(users.c.username == username, credentials.c.kind == PASSWORD)
        )
        async with self.engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return None if row is None else (_user(row._mapping), row.secret_hash)


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
                        id=user_id, username=username, is_admin=is_admin, created_at=sa.func.now()
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
    )
