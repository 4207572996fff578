import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from roadwatch.bootstrap.stores import detection_store
from tests.helpers.api_stack import ADMIN, Stack, login
from tests.helpers.kafka import stream_settings
from tests.helpers.ports import free_port
from tests.helpers.processes import FIRST_USER, isolated_environment, start_api, tear_down_stack
from tests.helpers.servers import Servers, fresh_mongo_database_url, fresh_postgres_database, unique


@pytest.fixture
def isolated_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a second, private roadwatch stack on ports of its own."""
    env = isolated_environment(tmp_path / "state")
    yield env
    tear_down_stack(env)


@pytest.fixture(
    scope="module",
    params=[pytest.param("postgres"), pytest.param("mongo", marks=pytest.mark.mongo)],
)
async def stack(
    request: pytest.FixtureRequest, servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """An API for the module, storing detections in each store in turn (a module may
    narrow that with `parametrize("stack", [...], indirect=True, scope="module")`)."""
    async with (
        fresh_postgres_database(servers) as users_url,
        fresh_postgres_database(servers) as postgres_store_url,
    ):
        store_url = (
            postgres_store_url if request.param == "postgres" else fresh_mongo_database_url(servers)
        )
        settings = (await stream_settings(servers, store_url=store_url)).model_copy(
            # schemathesis logs in many times from this one address.
            update={
                "users_db_url": users_url,
                "login_attempts_per_address": "10000/minute",
                "login_attempts_per_network": "10000/minute",
            }
        )
        log = tmp_path_factory.mktemp("api") / "api.log"
        api = await asyncio.to_thread(start_api, settings, port=free_port(), log=log)
        store = detection_store(store_url)
        await store.open()
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            created = await client.post("/users", json=ADMIN, headers=FIRST_USER)
            assert created.status_code == 201, created.text
            token = await login(client, ADMIN["username"], ADMIN["password"])
            try:
                yield Stack(
                    api,
                    settings,
                    store,
                    client,
                    {"Authorization": f"Bearer {token}"},
                    indexer_group=unique("group"),
                )
            finally:
                await store.close()
                assert await asyncio.to_thread(api.stop), api.log.read_text()[-3000:]
