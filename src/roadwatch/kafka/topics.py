"""The topics roadwatch uses, with the partitions and configuration each one needs, and
its consumer groups."""

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import NodeNotReadyError, TopicAlreadyExistsError, for_code
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_fixed

from roadwatch.settings import Settings

INDEXER_GROUP = "roadwatch-indexer"
DELIVER_GROUP = "roadwatch-deliver"

# Compaction keeps the latest record of every key: a rule's latest version, or its tombstone
# (for a day, long enough for every follower to see it) once it is deleted.
COMPACTED = {"cleanup.policy": "compact", "delete.retention.ms": str(24 * 3600 * 1000)}

T = TypeVar("T")


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
        existing = set(await _on_a_ready_node(admin.list_topics))
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
            response = await _on_a_ready_node(partial(admin.create_topics, [new]))
            for _topic, code, *_message in response.topic_errors:
                # Another process may create it between the listing and now: it is there.
                if code not in {0, TopicAlreadyExistsError.errno}:
                    raise for_code(code)(f"creating the topic {spec.name}")
        return [spec.name for spec in missing]
    finally:
        await admin.close()


async def _on_a_ready_node(call: Callable[[], Awaitable[T]]) -> T:
    """`call`'s answer. The admin client sends to one node, picked at random (or the
    controller), and raises at once if that node takes no connection: one of a cluster just
    started, or one that is down. It is asked again, for up to 10 s."""
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(NodeNotReadyError),
        stop=stop_after_delay(10),
        wait=wait_fixed(0.5),
        reraise=True,
    )
    return await retrying(call)
