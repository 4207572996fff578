"""The topics roadwatch uses, with the partitions and configuration each one needs, and
its consumer groups."""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from roadwatch.settings import Settings

INDEXER_GROUP = "roadwatch-indexer"
DELIVER_GROUP = "roadwatch-deliver"

# Compaction keeps the latest record of every key: a rule's latest version, or its tombstone
# (for a day, long enough for every follower to see it) once it is deleted.
COMPACTED = {"cleanup.policy": "compact", "delete.retention.ms": str(24 * 3600 * 1000)}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


def roadwatch_topics(settings: Settings) -> list[TopicSpec]:
    return [
        TopicSpec(settings.detections_topic, 6),
        TopicSpec(settings.alerts_topic, 3),
        TopicSpec(settings.dead_letter_topic, 3),
        TopicSpec(settings.webhooks_dead_letter_topic, 1),
        # One partition: every rule change in one order, read by every indexer.
        TopicSpec(settings.watchlists_topic, 1, COMPACTED),
    ]


async def create_missing_topics(
    kafka: Mapping[str, Any], wanted: list[TopicSpec], *, replication_factor: int = 1
) -> list[str]:
    """Create those of `wanted` that do not exist yet, through a client with the `kafka`
    options, each partition kept `replication_factor` times (-1: as many as the cluster's
    default); the names of those created."""
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in wanted if spec.name not in existing]
        for spec in missing:
            new = NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=replication_factor,
                # aiokafka asks for them, empty, when the cluster chooses the replicas.
                replica_assignments={} if replication_factor == -1 else None,
                topic_configs=spec.config,
            )
            response = await admin.create_topics([new])
            for _topic, code, *_message in response.topic_errors:
                # Another process may create it between the listing and now: it is there.
                if code not in {0, TopicAlreadyExistsError.errno}:
                    raise for_code(code)(f"creating the topic {spec.name}")
        return [spec.name for spec in missing]
    finally:
        await admin.close()
