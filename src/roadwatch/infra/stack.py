import asyncio
import os
from collections.abc import Callable, Iterable

from roadwatch.infra.config import SERVICE_NAMES, InfraConfig
from roadwatch.infra.errors import InfraError
from roadwatch.infra.ferretdb import FerretDBService
from roadwatch.infra.kafka import KafkaService
from roadwatch.infra.kafka_cluster import cluster_size
from roadwatch.infra.postgres import APPLICATION_DATABASE, OWNER, PostgresService
from roadwatch.infra.service import Service, ServiceStatus
from roadwatch.kafka.acls import KafkaUsers, least_privilege
from roadwatch.kafka.topics import roadwatch_topics
from roadwatch.settings import INFRA_ENV_FILE, Settings
from roadwatch.stores.migrate import migrate_schemas


class Infrastructure:
    """The local servers roadwatch runs on, started in dependency order and stopped in reverse."""

    def __init__(self, config: InfraConfig, settings: Settings) -> None:
        self.config = config
        self.postgres = PostgresService(config)
        self.ferretdb = FerretDBService(config, postgres=self.postgres)
        nodes, self._size_problem = cluster_size(config)
        # The first node creates the topics and users; every node is a voter of the quorum.
        self.kafka_nodes = [
            KafkaService(
                config,
                topics=roadwatch_topics(settings),
                grants=least_privilege(settings, KafkaUsers()),
                node=node,
                nodes=nodes,
            )
            for node in range(1, nodes + 1)
        ]
        self.kafka = self.kafka_nodes[0]
        self.services: list[Service] = [self.postgres, self.ferretdb, *self.kafka_nodes]

    async def up(
        self, names: Iterable[str] = SERVICE_NAMES, *, report: Callable[[str], None] = print
    ) -> None:
        wanted = set(names)
        if "ferretdb" in wanted:
            wanted.add("postgres")
        if "kafka" in wanted and self._size_problem:
            raise InfraError("kafka", self._size_problem)

        async def start(service: Service) -> None:
            started = await service.up()
            verb = "started" if started else "already running"
            report(f"{service.name}: {verb} on {service.address}")

        async def start_in_turn(chain: list[Service]) -> None:
            for service in chain:
                if service.kind in wanted:
                    await start(service)

        # Kafka does not wait on the databases; starting both at once saves seconds. A
        # cluster's nodes start together: none answers before a majority of them runs.
        kafka = [start(node) for node in self.kafka_nodes if "kafka" in wanted]
        await asyncio.gather(start_in_turn([self.postgres, self.ferretdb]), *kafka)
        if "postgres" in wanted:
            # As the tables' owner: the processes connect as a role that may not alter them.
            owner = self.postgres.url(APPLICATION_DATABASE, role=OWNER)
            await migrate_schemas(users_url=owner, detections_url=owner)
        self.write_env_file()

    def down(self, *, report: Callable[[str], None] = print) -> None:
        for service in reversed(self.services):
            stopped = service.down()
            report(f"{service.name}: {'stopped' if stopped else 'was not running'}")

    async def status(self) -> list[ServiceStatus]:
        return list(await asyncio.gather(*(service.status() for service in self.services)))

    def connection_settings(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for service in self.services:
            merged.update(service.connection_settings())
        return merged

    def secured_settings(self, kafka_user: str) -> dict[str, str]:
        """The connection settings as `kafka_user` of the secured listener, with PostgreSQL
        over TLS checked in full against the local authority."""
        ca = self.config.tls_dir / "ca.pem"
        verified = {
            key: f"{url}?sslmode=verify-full&sslrootcert={ca}"
            for key, url in self.postgres.connection_settings().items()
        }
        return {**self.connection_settings(), **verified, **self.kafka.secured_settings(kafka_user)}

    def write_env_file(self) -> None:
        path = self.config.home / INFRA_ENV_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [f"{key}={value}" for key, value in self.connection_settings().items()]
        # Written aside, then renamed over the old one: a process reading it meanwhile (a
        # second `infra up`, a test worker) sees the old file or the new, never half of one.
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        draft.touch(mode=0o600)
        draft.write_text("\n".join(lines) + "\n")
        draft.replace(path)
