"""The first administrator: made on the command line, or through the API with the one-time
setup token that `roadwatch api` prints; never by whoever reaches a new instance first."""

import asyncio
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from roadwatch.settings import Settings
from tests.helpers.api_stack import login
from tests.helpers.kafka import stream_settings
from tests.helpers.ports import free_port
from tests.helpers.processes import (
    FIRST_USER,
    ROADWATCH,
    TEST_SETUP_TOKEN,
    ApiProcess,
    settings_env,
    start_api,
)
from tests.helpers.servers import Servers, fresh_postgres_database

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

PASSWORD = "a long uncommon phrase"


@dataclass
class NewSystem:
    settings: Settings
    api: ApiProcess
    client: httpx.AsyncClient


@pytest.fixture
async def new_system(servers: Servers, tmp_path: Path) -> AsyncIterator[NewSystem]:
    """An API over a users' database with no user in it."""
    async with (
        fresh_postgres_database(servers) as users_url,
        fresh_postgres_database(servers) as store_url,
    ):
        settings = (await stream_settings(servers, store_url=store_url)).model_copy(
            update={"users_db_url": users_url}
        )
        api = await asyncio.to_thread(start_api, settings, port=free_port(), log=tmp_path / "a")
        try:
            async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
                yield NewSystem(settings, api, client)
        finally:
            api.stop()


def users_create(settings: Settings, *args: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ROADWATCH, "users", "create", *args],
        input=password + "\n",
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_a_new_instance_goes_only_to_whoever_has_the_setup_token(
    new_system: NewSystem,
) -> None:
    client, body = new_system.client, {"username": "admin", "password": PASSWORD}
    assert f"?setup={TEST_SETUP_TOKEN}" in new_system.api.log.read_text()
    assert (await client.post("/users", json=body)).status_code == 401
    wrong = await client.post("/users", json=body, headers={"X-Setup-Token": "guessed"})
    assert wrong.status_code == 401
    assert "setup token" in wrong.json()["detail"]
    created = await client.post("/users", json=body, headers=FIRST_USER)
    assert created.status_code == 201
    assert created.json()["is_admin"] is True
    # Once a user exists, the token makes nobody else.
    again = await client.post(
        "/users", json={"username": "second", "password": PASSWORD}, headers=FIRST_USER
    )
    assert again.status_code == 401


async def test_racers_without_the_token_make_no_administrator(new_system: NewSystem) -> None:
    answers = await asyncio.gather(
        *(
            new_system.client.post(
                "/users", json={"username": f"stranger{n}", "password": PASSWORD}
            )
            for n in range(40)
        )
    )
    assert {a.status_code for a in answers} == {401}
    assert (await new_system.client.get("/setup")).json() == {"needs_first_user": True}


async def test_users_create_admin_makes_the_first_administrator(
    new_system: NewSystem, tmp_path: Path
) -> None:
    done = await asyncio.to_thread(
        users_create, new_system.settings, "--admin", "chief", password=PASSWORD
    )
    assert done.returncode == 0, done.stderr
    assert "created the administrator chief" in done.stdout
    token = await login(new_system.client, "chief", PASSWORD)
    listed = await new_system.client.get("/users", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 200
    assert [u["username"] for u in listed.json()] == ["chief"]
    # A restart with a user no longer prints a setup link.
    api = await asyncio.to_thread(
        start_api, new_system.settings, port=free_port(), log=tmp_path / "again.log"
    )
    try:
        assert "?setup=" not in api.log.read_text()
    finally:
        api.stop()


@pytest.mark.parametrize(
    ("args", "password", "said"),
    [
        (("--admin", "chief"), "Password123!", "could be guessed"),
        (("--admin", "x"), PASSWORD, "username"),
        (("--admin", "bell\x07"), PASSWORD, "username"),
        (("--admin", "chief"), "p" * 1_000_000, "password"),
    ],
    ids=[
        "guessable-password",
        "short-username",
        "control-character-in-username",
        "a-megabyte-line-for-password",
    ],
)
async def test_users_create_refuses_what_the_api_refuses_in_one_line(
    new_system: NewSystem, args: tuple[str, ...], password: str, said: str
) -> None:
    done = await asyncio.to_thread(users_create, new_system.settings, *args, password=password)
    assert done.returncode == 1
    assert done.stderr.startswith("roadwatch: ")
    assert said in done.stderr
    assert (await new_system.client.get("/setup")).json() == {"needs_first_user": True}
