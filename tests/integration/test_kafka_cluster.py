"""`roadwatch infra up --kafka-brokers 3`: a local KRaft cluster of three nodes whose topics
keep three copies, two in sync, against the real brokers: it outlives a broker killed, and
refuses to acknowledge a write only one copy holds."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from roadwatch.infra.config import InfraConfig
from roadwatch.infra.kafka import KafkaService
from roadwatch.kafka.topics import TopicSpec
from tests.helpers.ports import free_ports_in_a_row

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

NODES = 3
TOPIC = "cluster.detections"


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[list[KafkaService]]:
    first = free_ports_in_a_row(3 * NODES)
    config = InfraConfig(
        home=tmp_path / "state",
        kafka_port=first,
        kafka_controller_port=first + 1,
        kafka_secured_port=first + 2,
        kafka_heap_mb=256,
        kafka_brokers=NODES,
    )
    nodes = [
        KafkaService(config, topics=[TopicSpec(TOPIC, 3)], node=node, nodes=NODES)
        for node in range(1, NODES + 1)
    ]
    try:
        # No node answers before a majority of the quorum runs: they start together.
        await asyncio.gather(*(node.up() for node in nodes))
        yield nodes
    finally:
        for node in reversed(nodes):
            await asyncio.to_thread(node.down)


async def _send(bootstrap: str, count: int, *, timeout_ms: int = 30_000) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", request_timeout_ms=timeout_ms
    )
    await producer.start()
    try:
        sent = [await producer.send(TOPIC, b"%d" % n, partition=n % 3) for n in range(count)]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _read_all(bootstrap: str, count: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(
        TOPIC, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        async with asyncio.timeout(60):
            while len(values) < count:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    values += [record.value for record in records if record.value is not None]
    finally:
        await consumer.stop()
    return values


def _crash(node: KafkaService) -> None:
    assert node.daemon.kill(), f"{node.name} was not running"


@pytest.mark.timeout(420)
async def test_a_cluster_of_three_keeps_every_write_through_a_broker_crash(
    cluster: list[KafkaService],
) -> None:
    first, second, third = cluster
    bootstrap = first.bootstrap
    assert bootstrap.count(",") == NODES - 1
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        assert len((await admin.describe_cluster())["brokers"]) == NODES
        (described,) = await admin.describe_topics([TOPIC])
        assert {len(p["replicas"]) for p in described["partitions"]} == {NODES}
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, TOPIC)])
        entries = {entry[0]: entry[1] for entry in configs[0].resources[0][4]}
        assert entries["min.insync.replicas"] == "2"
    finally:
        await admin.close()

    await _send(bootstrap, 300)
    _crash(second)
    # Two copies in sync: every write is still acknowledged (once the controller has fenced
    # the dead broker, within its session timeout), and none is lost.
    await _send(bootstrap, 300, timeout_ms=60_000)
    assert sorted(await _read_all(bootstrap, 600)) == sorted([b"%d" % n for n in range(300)] * 2)

    # With a second broker down (one copy left, and no quorum of controllers), the write is
    # refused, not acknowledged and lost.
    _crash(third)
    with pytest.raises(KafkaError):
        await _send(bootstrap, 1, timeout_ms=5_000)

    # Back, they catch up, and writes are acknowledged again.
    await asyncio.gather(second.up(), third.up())
    await _send(bootstrap, 30)
    assert len(await _read_all(bootstrap, 630)) >= 630
