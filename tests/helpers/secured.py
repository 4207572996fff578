"""A deployment as a real one is secured: Kafka over SASL_SSL with a user of least privilege
per process, and PostgreSQL over TLS verified in full, as the application role."""

import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
from pydantic import SecretStr

from roadwatch.infra.postgres import APPLICATION, OWNER
from roadwatch.kafka.acls import Grant, KafkaUsers, least_privilege
from roadwatch.kafka.topics import COMPACTED
from roadwatch.settings import Settings
from tests.helpers.servers import Servers, create_topic, unique


@dataclass(frozen=True)
class Secured:
    """Settings for each process, as its own Kafka user and the database's roles."""

    camera: Settings
    indexer: Settings
    api: Settings
    deliver: Settings
    indexer_group: str
    passwords: dict[str, str]


def verified(url: str, servers: Servers) -> str:
    """The URL, connecting over TLS that checks the server's certificate and name."""
    ca = servers.infrastructure.config.tls_dir / "ca.pem"
    return f"{url}?sslmode=verify-full&sslrootcert={ca}"


@asynccontextmanager
async def secured_deployment(
    servers: Servers, *, withheld: Callable[[Grant], bool] = lambda _grant: False
) -> AsyncIterator[Secured]:
    """Fresh topics, Kafka users with the ACLs the docs name (but those `withheld`), and a
    fresh database that the owner role owns and the application role may use."""
    base = servers.settings.model_copy(
        update={
            "detections_topic": await create_topic(servers.kafka, partitions=3),
            "alerts_topic": await create_topic(servers.kafka, partitions=1),
            "dead_letter_topic": await create_topic(servers.kafka, partitions=1),
            "webhooks_dead_letter_topic": await create_topic(servers.kafka, partitions=1),
            "watchlists_topic": await create_topic(servers.kafka, partitions=1, config=COMPACTED),
        }
    )
    users = KafkaUsers(
        camera=unique("camera"),
        indexer=unique("indexer"),
        api=unique("api"),
        deliver=unique("deliver"),
    )
    indexer_group, deliver_group = unique("indexers"), unique("deliverers")
    passwords = {user: secrets.token_urlsafe(24) for user in users.all()}
    kafka = servers.infrastructure.kafka
    access = kafka.access()
    await access.add_users(passwords)
    grants = least_privilege(base, users, indexer_group=indexer_group, deliver_group=deliver_group)
    await access.grant([grant for grant in grants if not withheld(grant)])
    postgres = servers.infrastructure.postgres
    name = unique("secured")
    admin = await asyncpg.connect(servers.postgres_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        await postgres.grant_application(name)
        application = verified(postgres.url(name, role=APPLICATION), servers)

        def secured(user: str) -> Settings:
            return base.model_copy(
                update={
                    "kafka_broker_url": kafka.secured_bootstrap,
                    "kafka_security_protocol": "SASL_SSL",
                    "kafka_sasl_mechanism": "SCRAM-SHA-512",
                    "kafka_sasl_username": user,
                    "kafka_sasl_password": SecretStr(passwords[user]),
                    "kafka_ssl_ca_file": servers.infrastructure.config.tls_dir / "ca.pem",
                    "detections_db_url": application,
                    "users_db_url": application,
                    "migrations_db_url": verified(postgres.url(name, role=OWNER), servers),
                }
            )

        yield Secured(
            camera=secured(users.camera),
            indexer=secured(users.indexer),
            api=secured(users.api),
            deliver=secured(users.deliver),
            indexer_group=indexer_group,
            passwords=passwords,
        )
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
