"""What the API relies on from the user store, against PostgreSQL and the in-memory fake
that route unit tests use."""

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from roadwatch.stores.users import UsernameTaken, UserStore
from roadwatch.stores.users_postgres import PostgresUserStore
from tests.contract.backends import BOTH, under_contract
from tests.helpers.servers import Servers
from tests.helpers.user_fake import InMemoryUserStore

HASH = "$argon2id$v=19$m=65536,t=3,p=4$not-a-real-hash"


@pytest.fixture(params=BOTH)
async def users(request: pytest.FixtureRequest, servers: Servers) -> AsyncIterator[UserStore]:
    async with under_contract(
        request.param, servers, real=PostgresUserStore, fake=InMemoryUserStore
    ) as store:
        yield store


async def test_only_the_first_of_many_racing_first_users_is_created_an_administrator(
    users: UserStore,
) -> None:
    created = await asyncio.gather(
        *(users.create_first(username=f"first{n}", password_hash=HASH) for n in range(10))
    )

    winners = [user for user in created if user is not None]
    assert len(winners) == 1
    assert winners[0].is_admin
    assert await users.has_users()


async def test_a_username_is_taken_whatever_its_case(users: UserStore) -> None:
    await users.create(username="Operator", password_hash=HASH, is_admin=False)

    with pytest.raises(UsernameTaken):
        await users.create(username="OPERATOR", password_hash=HASH, is_admin=False)

    found = await users.password_login("operator")
    assert found is not None
    assert (found[0].username, found[1]) == ("Operator", HASH)


async def test_a_new_password_or_access_moves_the_credentials_version_on(
    users: UserStore,
) -> None:
    user = await users.create(username="ana", password_hash=HASH, is_admin=False)

    changed = await users.set_password(user.id, "new-hash")
    disabled = await users.set_disabled(user.id, True)
    enabled = await users.set_disabled(user.id, False)

    assert [
        u and (u.disabled, u.credentials_version) for u in (user, changed, disabled, enabled)
    ] == [
        (False, 0),
        (False, 1),
        (True, 2),
        (False, 3),
    ]
    assert await users.password_hash(user.id) == "new-hash"
    assert await users.get(user.id) == enabled


async def test_a_deleted_user_and_their_credentials_are_gone(users: UserStore) -> None:
    user = await users.create(username="ana", password_hash=HASH, is_admin=False)
    other = await users.create(username="ben", password_hash=HASH, is_admin=False)

    assert await users.delete(user.id)

    assert not await users.delete(user.id)
    assert await users.get(user.id) is None
    assert await users.password_hash(user.id) is None
    assert await users.password_login("ana") is None
    assert [u.username for u in await users.list_users()] == [other.username]


async def test_changes_to_a_user_that_does_not_exist_say_so(users: UserStore) -> None:
    nobody = uuid.uuid4()
    assert await users.set_password(nobody, HASH) is None
    assert await users.set_disabled(nobody, True) is None
    assert await users.get(nobody) is None


async def test_users_are_listed_oldest_first(users: UserStore) -> None:
    for name in ("carla", "ana", "ben"):
        await users.create(username=name, password_hash=HASH, is_admin=False)

    assert [u.username for u in await users.list_users()] == ["carla", "ana", "ben"]
