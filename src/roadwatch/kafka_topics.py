"""The topics roadwatch uses, with the partitions and configuration each one needs."""

import contextlib
from dataclasses import dataclass, field

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from roadwatch.settings import Settings

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


async def create_missing_topics(bootstrap: str, wanted: list[TopicSpec]) -> list[str]:
    """Create those of `wanted` that do not exist yet; the names of those created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in wanted if spec.name not in existing]
        for spec in missing:
            new = NewTopic(
                spec.name,
                num_partitions=spec.partitions,
                replication_factor=1,
                topic_configs=spec.config,
            )
            # Another process may create it between the listing and now: it is there.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([new])
        return [spec.name for spec in missing]
    finally:
        await admin.close()
