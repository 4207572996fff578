"""Whether the consumer group still gives a partition to this consumer, in its coordinator's
view: a consumer that missed a rebalance (a long pause) lists the partition in its
assignment until its next heartbeat tells it otherwise."""

from roadwatch.kafka.types import (
    AIOKafkaConsumer,
    CommitFailedError,
    IllegalStateError,
    OffsetAndMetadata,
    TopicPartition,
)


async def still_holds(consumer: AIOKafkaConsumer, partition: TopicPartition) -> bool:
    """Commits the group's committed offset of `partition` again, which changes nothing: the
    coordinator takes a commit only from a member of the group's current generation, and a
    member holds what its assignment lists. Where the group has committed nothing yet, the
    partition's beginning is committed: where a consumer reading from the earliest starts."""
    if partition not in consumer.assignment():
        return False
    committed = await consumer.committed(partition)
    if committed is None:
        committed = (await consumer.beginning_offsets([partition]))[partition]
    try:
        await consumer.commit({partition: OffsetAndMetadata(committed, "")})
    except (CommitFailedError, IllegalStateError):
        return False
    # The commit goes with the generation current when it is sent: a rejoin while it waited
    # (the member told by a heartbeat that it was dropped) gives the latest assignment.
    return partition in consumer.assignment()
