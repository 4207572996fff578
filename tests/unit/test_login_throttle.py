"""The login throttle's rules, on its in-process storage."""

import asyncio

import pytest
from limits.aio.storage import MemoryStorage

from roadwatch.api.login_throttle import LoginThrottle, ThrottleRules, TooManyAttempts
from roadwatch.errors import ConfigurationError

MEMORY = "async+memory://"


async def admitted(throttle: LoginThrottle, username: str, address: str) -> bool:
    try:
        await throttle.admit(username, address)
    except TooManyAttempts:
        return False
    return True


async def test_attempts_sent_at_once_are_counted_like_attempts_sent_in_turn() -> None:
    throttle = LoginThrottle.from_uri(MEMORY)

    results = await asyncio.gather(*(admitted(throttle, "ana", "10.0.0.1") for _ in range(50)))

    assert results.count(True) == 5


async def test_one_address_cannot_lock_the_owner_out_from_another() -> None:
    throttle = LoginThrottle.from_uri(MEMORY)
    for _ in range(5):
        await throttle.admit("ana", "10.0.0.66")

    assert not await admitted(throttle, "ana", "10.0.0.66")
    assert await admitted(throttle, "ana", "10.0.0.1")
    assert await admitted(throttle, "ANA", "10.0.0.2")


async def test_guesses_for_made_up_names_do_not_lock_out_the_address() -> None:
    throttle = LoginThrottle.from_uri(MEMORY)
    for n in range(20):
        await throttle.admit(f"nobody-{n}", "10.0.0.9")

    assert await admitted(throttle, "ana", "10.0.0.9")


async def test_an_address_spraying_many_accounts_is_stopped() -> None:
    throttle = LoginThrottle.from_uri(MEMORY, ThrottleRules(per_address="30/minute"))
    results = [await admitted(throttle, f"user-{n}", "10.0.0.9") for n in range(40)]

    assert results == [True] * 30 + [False] * 10


async def test_guesses_from_many_addresses_slow_the_account_but_not_its_owner() -> None:
    throttle = LoginThrottle.from_uri(MEMORY)
    await throttle.admit("ana", "192.0.2.1")
    await throttle.succeeded("ana", "192.0.2.1")  # the owner's usual address

    spread = [await admitted(throttle, "ana", f"198.51.100.{n}") for n in range(15)]

    # Ten a minute from addresses the account was never used from, its owner's first included.
    assert spread == [True] * 9 + [False] * 6
    assert not await admitted(throttle, "ana", "203.0.113.7")  # a new address waits
    assert all([await admitted(throttle, "ana", "192.0.2.1") for _ in range(4)])


async def test_a_success_clears_the_addresss_count_for_that_account() -> None:
    throttle = LoginThrottle.from_uri(MEMORY)
    for _ in range(4):
        await throttle.admit("ana", "10.0.0.1")
    await throttle.succeeded("ana", "10.0.0.1")

    assert all([await admitted(throttle, "ana", "10.0.0.1") for _ in range(5)])


async def test_the_wait_is_given_in_whole_seconds_until_the_window_frees() -> None:
    throttle = LoginThrottle.from_uri(MEMORY)
    for _ in range(5):
        await throttle.admit("ana", "10.0.0.1")

    with pytest.raises(TooManyAttempts) as refused:
        await throttle.admit("ana", "10.0.0.1")

    assert 1 <= refused.value.retry_after <= 300


async def test_all_attempts_together_are_capped() -> None:
    throttle = LoginThrottle.from_uri(MEMORY, ThrottleRules(everyone="100/minute"))
    results = [await admitted(throttle, f"user-{n}", f"10.0.{n}.1") for n in range(120)]

    assert results.count(True) == 100


def test_a_storage_that_is_not_async_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="LOGIN_THROTTLE_STORAGE"):
        LoginThrottle.from_uri("memory://")


async def test_workers_counting_apart_together_admit_no_more_than_one_process() -> None:
    workers = [LoginThrottle.from_uri(MEMORY, processes=2) for _ in range(2)]

    # A guesser whose connections land on both workers, at once.
    results = await asyncio.gather(
        *(admitted(workers[n % 2], "ana", "10.0.0.1") for n in range(50))
    )

    assert results.count(True) == 4  # two a worker; one process alone admits five


def test_every_limit_is_divided_among_the_workers_and_none_below_one() -> None:
    rules = ThrottleRules(
        everyone="600/minute",
        per_network="120/minute",
        per_address="7/minute",
        per_account_per_address="1/5minutes",
        per_account_from_new_addresses="10/minute;60 per hour",
    )
    assert rules.shared_by(3) == ThrottleRules(
        everyone="200/minute",
        per_network="40/minute",
        per_address="2/minute",
        per_account_per_address="1/5minutes",
        per_account_from_new_addresses="3/minute;20 per hour",
    )
    assert rules.shared_by(1) == rules


async def test_a_flood_from_one_address_never_stops_a_user_elsewhere() -> None:
    throttle = LoginThrottle.from_uri(MEMORY)
    # 15 a second for two minutes, as the flood: 1,800 attempts.
    flood = [await admitted(throttle, f"guess-{n}", "203.0.113.7") for n in range(1800)]

    assert flood.count(True) == 30
    assert await admitted(throttle, "ana", "198.51.100.20")


@pytest.mark.parametrize(
    ("flooding", "elsewhere"),
    [
        ("203.0.113.{}", "198.51.100.20"),
        ("2001:db8:1:2::{:x}", "2001:db8:1:3::1"),
    ],
    ids=["ipv4-24", "ipv6-64"],
)
async def test_a_flood_from_one_network_never_stops_a_user_in_another(
    flooding: str, elsewhere: str
) -> None:
    throttle = LoginThrottle.from_uri(MEMORY)
    flood = [
        await admitted(throttle, f"guess-{n}", flooding.format(1 + n % 250)) for n in range(2000)
    ]

    assert flood.count(True) == 120
    assert await admitted(throttle, "ana", elsewhere)


async def test_once_everyones_cap_is_reached_nothing_more_is_counted() -> None:
    rules = ThrottleRules(everyone="100/minute", per_network="1000/minute")
    throttle = LoginThrottle.from_uri(MEMORY, rules)
    # A spray from 2,000 networks, one attempt each.
    spray = [
        await admitted(throttle, f"guess-{n}", f"10.{n // 250}.{n % 250}.1") for n in range(2000)
    ]

    assert spray.count(True) == 100
    storage = throttle._storage
    assert isinstance(storage, MemoryStorage)
    # At most five counters an attempt taken in (its network, address, account from that
    # address, and account, per minute and per hour), none for the 1,900 refused.
    assert len(storage.events) <= 5 * 100 + 1
