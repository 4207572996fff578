import uuid
from datetime import UTC, datetime

from roadwatch.api.recent_users import RecentUsers
from roadwatch.domain import User
from tests.helpers.clock import Clock


class CountingUsers:
    """Users in a dict, counting the lookups: a fake of the store for the cache's logic."""

    def __init__(self, *users: User) -> None:
        self.users = {user.id: user for user in users}
        self.lookups = 0

    async def get(self, user_id: uuid.UUID) -> User | None:
        self.lookups += 1
        return self.users.get(user_id)


def user(name: str) -> User:
    return User(id=uuid.uuid4(), username=name, is_admin=False, created_at=datetime.now(UTC))


async def test_a_user_is_read_once_while_remembered_and_again_after() -> None:
    ana = user("ana")
    store, clock = CountingUsers(ana), Clock()
    recent = RecentUsers(store, seconds=10, clock=clock)

    assert await recent.get(ana.id) == ana
    clock.now = 9.9
    assert await recent.get(ana.id) == ana
    assert store.lookups == 1

    del store.users[ana.id]
    clock.now = 10.1
    assert await recent.get(ana.id) is None
    assert store.lookups == 2


async def test_an_unknown_user_is_never_remembered() -> None:
    store = CountingUsers()
    recent = RecentUsers(store, clock=Clock())
    missing = uuid.uuid4()

    assert await recent.get(missing) is None
    assert await recent.get(missing) is None
    assert store.lookups == 2


async def test_the_user_looked_up_longest_ago_is_forgotten_first() -> None:
    first, second, third = user("a"), user("b"), user("c")
    store = CountingUsers(first, second, third)
    recent = RecentUsers(store, max_users=2, clock=Clock())

    for known in (first, second, third):
        await recent.get(known.id)
    await recent.get(second.id)
    await recent.get(third.id)
    assert store.lookups == 3
    await recent.get(first.id)
    assert store.lookups == 4
