import asyncio
from typing import Annotated

import typer

from roadwatch.cli.common import fail, local_settings
from roadwatch.errors import RoadwatchError
from roadwatch.kafka.check import KafkaRefused, KafkaUnreachable, check_kafka, refusal
from roadwatch.kafka.clients import kafka_options
from roadwatch.kafka.topics import create_missing_topics, roadwatch_topics
from roadwatch.settings import Settings

Replicas = Annotated[
    int,
    typer.Option(
        min=-1, help="Copies of each partition; -1: the cluster's default.replication.factor."
    ),
]


def topics(replication_factor: Replicas = -1) -> None:
    """Create the topics roadwatch uses where they are missing, as the Kafka user of these
    settings (one allowed to create topics), with the partitions and configuration each needs."""
    settings = local_settings()
    try:
        created = asyncio.run(_create(settings, replication_factor))
    except RoadwatchError as error:
        raise fail(error) from None
    for spec in roadwatch_topics(settings):
        verb = "created" if spec.name in created else "exists"
        config = ", ".join(f"{k}={v}" for k, v in spec.config.items())
        typer.echo(
            f"{spec.name}: {verb} ({spec.partitions} partitions{', ' + config if config else ''})"
        )


async def _create(settings: Settings, replication_factor: int) -> list[str]:
    await check_kafka(settings, topics=[])
    try:
        return await create_missing_topics(
            kafka_options(settings),
            roadwatch_topics(settings),
            replication_factor=replication_factor,
        )
    except (KafkaRefused, KafkaUnreachable):
        raise
    except Exception as error:
        refused = refusal(error, user=settings.kafka_sasl_username)
        if refused is None:
            raise
        raise refused from None
