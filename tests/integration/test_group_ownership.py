"""Whether the group still gives a consumer a partition, as its coordinator sees it: a
consumer paused past its session still lists the partition, and the coordinator says no."""

import time

import pytest

from roadwatch.kafka.ownership import still_holds
from roadwatch.kafka.types import AIOKafkaConsumer, TopicPartition
from tests.helpers.servers import Servers, create_topic, unique
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# The broker's smallest session (group.min.session.timeout.ms), in ms.
SESSION_MS = 6000


async def _member(servers: Servers, topic: str, group: str) -> AIOKafkaConsumer:
    member = AIOKafkaConsumer(
        topic,
        bootstrap_servers=servers.kafka,
        group_id=group,
        enable_auto_commit=False,
        session_timeout_ms=SESSION_MS,
        heartbeat_interval_ms=1000,
    )
    await member.start()
    partition = TopicPartition(topic, 0)

    async def joined() -> bool:
        await member.getmany(timeout_ms=100)
        return partition in member.assignment()

    await eventually(joined, within=30, what="the group joined")
    return member


async def test_a_member_holds_its_partition_and_one_paused_past_its_session_does_not(
    servers: Servers,
) -> None:
    topic = await create_topic(servers.kafka, partitions=1)
    partition = TopicPartition(topic, 0)
    member = await _member(servers, topic, unique("group"))
    try:
        assert await still_holds(member, partition)
        # A long pause (a stalled process, a VM frozen): no heartbeat, the whole loop held.
        time.sleep(SESSION_MS / 1000 + 4)  # noqa: ASYNC251 - the pause is the point
        # Its assignment still lists the partition: only the coordinator knows better.
        assert partition in member.assignment()
        assert not await still_holds(member, partition)
    finally:
        await member.stop()
