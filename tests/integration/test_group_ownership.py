"""Whether the group still gives a consumer a partition, as its coordinator sees it: a
consumer paused past its session, whose partition went to another member meanwhile, still
lists the partition, and the coordinator says no."""

import asyncio
import threading
import time

import pytest

from roadwatch.kafka.ownership import still_holds
from roadwatch.kafka.types import AIOKafkaConsumer, TopicPartition
from tests.helpers.servers import Servers, create_topic, unique
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

# The broker's smallest session (group.min.session.timeout.ms), in ms.
SESSION_MS = 6000


def _member(servers: Servers, topic: str, group: str, name: str) -> AIOKafkaConsumer:
    # Member ids begin with the client id, and the range assignor gives a lone partition to
    # the member whose id sorts first.
    return AIOKafkaConsumer(
        topic,
        bootstrap_servers=servers.kafka,
        group_id=group,
        client_id=name,
        enable_auto_commit=False,
        session_timeout_ms=SESSION_MS,
        heartbeat_interval_ms=1000,
    )


async def _holds(member: AIOKafkaConsumer, partition: TopicPartition) -> bool:
    await member.getmany(timeout_ms=100)
    return partition in member.assignment()


def _successor(
    servers: Servers,
    partition: TopicPartition,
    group: str,
    *,
    took: threading.Event,
    leave: threading.Event,
) -> threading.Thread:
    """A member on a thread of its own, so that it goes on while the test's loop is held;
    sets `took` once the partition is its own, and leaves the group once `leave` is set."""

    async def run() -> None:
        member = _member(servers, partition.topic, group, "a-successor")
        await member.start()
        try:
            while not leave.is_set():
                if await _holds(member, partition):
                    took.set()
        finally:
            await member.stop()

    return threading.Thread(target=asyncio.run, args=(run(),), daemon=True)


@pytest.mark.timeout(120)
async def test_a_member_paused_while_its_partition_moved_on_no_longer_holds_it(
    servers: Servers,
) -> None:
    topic, group = await create_topic(servers.kafka, partitions=1), unique("group")
    partition = TopicPartition(topic, 0)
    paused = _member(servers, topic, group, "z-paused")
    await paused.start()
    took, leave = threading.Event(), threading.Event()
    successor = _successor(servers, partition, group, took=took, leave=leave)
    try:
        await eventually(lambda: _holds(paused, partition), within=30, what="the group joined")
        assert await still_holds(paused, partition)
        successor.start()
        # A long pause (a stalled process, a VM frozen): no heartbeat, the whole loop held,
        # while the group drops the member and gives its partition to the successor.
        time.sleep(SESSION_MS / 1000 + 9)  # noqa: ASYNC251 - the pause is the point
        assert took.is_set(), "the successor did not take the partition during the pause"
        # Its assignment still lists the partition: only the coordinator knows better.
        assert partition in paused.assignment()
        assert not await still_holds(paused, partition)
    finally:
        leave.set()
        await paused.stop()
        if successor.ident is not None:
            await asyncio.to_thread(successor.join, 30)
