"""One API process over its own databases and topics, with an administrator logged in: the
state the API's tests share within a module."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from roadwatch.settings import Settings
from roadwatch.stores.detection_store import DetectionStore
from tests.helpers.kafka import stream_settings
from tests.helpers.ports import free_port
from tests.helpers.processes import FIRST_USER, ApiProcess, start_api
from tests.helpers.servers import Servers, fresh_postgres_database

ADMIN = {"username": "admin", "password": "correct horse battery staple"}
OPERATOR = {"username": "operator", "password": "a different long secret"}
SUV = {"Year": 2018, "Make": "Jeep", "Model": "Wrangler", "Category": "SUV"}
SEDAN = {"Year": 2012, "Make": "Honda", "Model": "Civic", "Category": "Sedan"}


@dataclass
class Stack:
    api: ApiProcess
    settings: Settings
    store: DetectionStore
    client: httpx.AsyncClient
    admin_headers: dict[str, str]
    # One indexer group for the module: each test's indexer resumes where the last one was.
    indexer_group: str


async def login(client: httpx.AsyncClient, username: str, password: str) -> str:
    response = await client.post("/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] > 0
    return str(body["access_token"])


async def bearer(client: httpx.AsyncClient, user: dict[str, str]) -> dict[str, str]:
    """The Authorization header of `user`, logged in."""
    return {"Authorization": f"Bearer {await login(client, user['username'], user['password'])}"}


async def admin_and_operator(client: httpx.AsyncClient) -> tuple[dict[str, str], dict[str, str]]:
    """On an API with no user yet: the first administrator and an operator (not one), each
    logged in; their Authorization headers."""
    created = await client.post("/users", json=ADMIN, headers=FIRST_USER)
    assert created.status_code == 201, created.text
    admin = await bearer(client, ADMIN)
    created = await client.post("/users", json=OPERATOR, headers=admin)
    assert created.status_code == 201, created.text
    return admin, await bearer(client, OPERATOR)


@dataclass
class AdminStack:
    """An API over databases and topics of its own, with an administrator and an operator
    logged in."""

    api: ApiProcess
    settings: Settings
    users_url: str
    client: httpx.AsyncClient
    admin: dict[str, str]
    operator: dict[str, str]


@asynccontextmanager
async def admin_stack(servers: Servers, *, log: Path, **settings: Any) -> AsyncIterator[AdminStack]:
    """Such a stack, its settings changed by `settings`; the API stopped cleanly on leaving."""
    async with (
        fresh_postgres_database(servers) as users_url,
        fresh_postgres_database(servers) as store_url,
    ):
        chosen = (await stream_settings(servers, store_url=store_url)).model_copy(
            update={"users_db_url": users_url, **settings}
        )
        api = await asyncio.to_thread(start_api, chosen, port=free_port(), log=log)
        try:
            async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
                admin, operator = await admin_and_operator(client)
                yield AdminStack(api, chosen, users_url, client, admin, operator)
        finally:
            assert await asyncio.to_thread(api.stop), api.log.read_text()[-3000:]
