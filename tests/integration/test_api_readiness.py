"""The API says it is not ready, and which dependency is missing, while its database is down."""

import asyncio
import shutil
from pathlib import Path

import httpx
import pytest

from roadwatch.infra.config import InfraConfig
from roadwatch.infra.postgres import PostgresService
from tests.helpers.kafka import stream_settings
from tests.helpers.ports import free_port
from tests.helpers.processes import start_api
from tests.helpers.servers import Servers
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


async def test_readyz_is_503_naming_the_database_while_it_is_down(
    servers: Servers, tmp_path: Path
) -> None:
    config = InfraConfig(home=tmp_path / "state", postgres_port=free_port())
    database = PostgresService(config)
    await database.up()
    url = database.url("roadwatch")
    settings = (await stream_settings(servers, store_url=url)).model_copy(
        update={"users_db_url": url}
    )
    api = await asyncio.to_thread(start_api, settings, port=free_port(), log=tmp_path / "api.log")
    try:
        async with httpx.AsyncClient(base_url=api.url, timeout=10) as client:
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
    finally:
        api.stop()
        database.down()
        shutil.rmtree((config.home / "postgres").resolve(), ignore_errors=True)
