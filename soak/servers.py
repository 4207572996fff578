"""The soak's own servers, on ports of their own: three KRaft brokers and a PostgreSQL,
which its faults kill, stop and restart."""

import asyncio
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from tests.helpers.ports import free_port, free_ports_in_a_row

from roadwatch.infra.config import InfraConfig
from roadwatch.infra.kafka import KafkaService
from roadwatch.infra.postgres import APPLICATION_DATABASE, OWNER, PostgresService
from roadwatch.kafka.topics import roadwatch_topics
from roadwatch.settings import Settings
from roadwatch.stores.migrate import migrate_schemas

BROKERS = 3


@dataclass
class SoakServers:
    brokers: list[KafkaService]
    postgres: PostgresService

    @property
    def bootstrap(self) -> str:
        return self.brokers[0].bootstrap

    @property
    def postgres_url(self) -> str:
        """The superuser's, for the checks."""
        return self.postgres.url(APPLICATION_DATABASE)

    def settings(self, **chosen: Any) -> Settings:
        """Settings for roadwatch's processes on these servers, with `chosen` over them."""
        connections = {
            "kafka_broker_url": self.bootstrap,
            **{
                name.lower(): url
                for name, url in self.postgres.connection_settings().items()
                if name != "POSTGRES_URL"
            },
        }
        return Settings(_env_file=None, **{**connections, **chosen})

    async def active_controller(self) -> KafkaService:
        """The broker that is the quorum's leader now."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=10_000)
        await admin.start()
        try:
            controller = (await admin.describe_cluster())["controller_id"]
        finally:
            await admin.close()
        return next(broker for broker in self.brokers if broker.node == controller)


@asynccontextmanager
async def servers_running(home: Path, settings: Settings) -> AsyncIterator[SoakServers]:
    """The cluster with roadwatch's topics (three copies, two in sync) and a migrated
    PostgreSQL; stopped and removed on leaving."""
    first = free_ports_in_a_row(3 * BROKERS)
    config = InfraConfig(
        home=home,
        kafka_port=first,
        kafka_controller_port=first + 1,
        kafka_secured_port=first + 2,
        kafka_heap_mb=320,
        kafka_brokers=BROKERS,
        postgres_port=free_port(),
    )
    brokers = [
        KafkaService(config, topics=roadwatch_topics(settings), node=node, nodes=BROKERS)
        for node in range(1, BROKERS + 1)
    ]
    postgres = PostgresService(config)
    try:
        # No broker answers before a majority of the quorum runs: they start together.
        await asyncio.gather(postgres.up(), *(broker.up() for broker in brokers))
        owner = postgres.url(APPLICATION_DATABASE, role=OWNER)
        await migrate_schemas(users_url=owner, detections_url=owner)
        yield SoakServers(brokers, postgres)
    finally:
        for broker in reversed(brokers):
            await asyncio.to_thread(broker.down)
        await asyncio.to_thread(postgres.down)
        shutil.rmtree((home / "postgres").resolve(), ignore_errors=True)
