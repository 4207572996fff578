"""The API while its database is down and after it comes back: not ready, saying which
dependency is missing; readers told so clearly, and no error once it is back."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from roadwatch.infra.postgres import PostgresService
from tests.helpers.api_stack import ADMIN, bearer
from tests.helpers.kafka import stream_settings
from tests.helpers.ports import free_port
from tests.helpers.processes import FIRST_USER, ApiProcess, start_api
from tests.helpers.servers import Servers, own_postgres
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


@asynccontextmanager
async def api_over_own_database(
    servers: Servers, tmp_path: Path
) -> AsyncIterator[tuple[PostgresService, ApiProcess]]:
    async with own_postgres(tmp_path / "state") as database:
        url = database.url("roadwatch")
        settings = (await stream_settings(servers, store_url=url)).model_copy(
            update={"users_db_url": url}
        )
        log = tmp_path / "api.log"
        api = await asyncio.to_thread(start_api, settings, port=free_port(), log=log)
        try:
            yield database, api
        finally:
            api.stop()


async def test_readyz_is_503_naming_the_database_while_it_is_down(
    servers: Servers, tmp_path: Path
) -> None:
    async with (
        api_over_own_database(servers, tmp_path) as (database, api),
        httpx.AsyncClient(base_url=api.url, timeout=10) as client,
    ):
        assert (await client.get("/readyz")).status_code == 200

        await asyncio.to_thread(database.down)
        down = await client.get("/readyz")
        assert down.status_code == 503
        assert down.json()["ready"] is False
        assert down.json()["checks"]["broker"] == "ok"
        assert down.json()["checks"]["detections database"].startswith("unreachable")
        assert (await client.get("/healthz")).status_code == 200

        await database.up()

        async def ready() -> bool:
            return (await client.get("/readyz")).status_code == 200

        await eventually(ready, within=30, what="ready again once the database is back")


async def test_readers_get_no_error_after_a_database_restart_and_a_clear_503_during_it(
    servers: Servers, tmp_path: Path
) -> None:
    reads = ["/detections", "/stats", "/detections?make=Ford", "/detections?limit=5"] * 5
    async with (
        api_over_own_database(servers, tmp_path) as (database, api),
        httpx.AsyncClient(base_url=api.url, timeout=10) as client,
    ):
        assert (await client.post("/users", json=ADMIN, headers=FIRST_USER)).status_code == 201
        headers = await bearer(client, ADMIN)

        async def statuses() -> list[int]:
            answers = await asyncio.gather(*(client.get(p, headers=headers) for p in reads))
            return [answer.status_code for answer in answers]

        # At once, so that the API's pool holds several connections, each to be lost.
        assert await statuses() == [200] * len(reads)

        await asyncio.to_thread(database.down)
        # Detections (asyncpg's pool), users (SQLAlchemy's), and a login: each a clear 503.
        for during in (
            await client.get("/detections", headers=headers),
            await client.get("/users", headers=headers),
            await client.post("/token", data=ADMIN),
        ):
            assert during.status_code == 503, during.text
            assert "database" in during.json()["detail"]

        await database.up()
        assert await statuses() == [200] * len(reads)
