"""One API process over its own databases and topics, with an administrator logged in: the
state the API's tests share within a module."""

from dataclasses import dataclass

import httpx

from roadwatch.settings import Settings
from roadwatch.stores.base import DetectionStore
from tests.helpers.processes import ApiProcess

ADMIN = {"username": "admin", "password": "correct horse battery staple"}
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
