"""An idempotent producer goes on after a batch the broker refused for good: aiokafka's
numbering of the partition's batches kept the gap, and the broker refused every later batch
of the partition as out of order, for the producer's life."""

import asyncio

import pytest

from roadwatch.bootstrap.clients import kafka_producer
from roadwatch.kafka.types import MessageSizeTooLargeError
from tests.helpers.kafka import read_topic
from tests.helpers.servers import Servers, create_topic

pytestmark = pytest.mark.kafka


async def test_a_batch_refused_for_good_stops_no_later_batch_of_its_partition(
    servers: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    topic = await create_topic(servers.kafka, config={"max.message.bytes": "20000"})
    producer = kafka_producer(servers.settings, linger_ms=0)
    await producer.start()
    try:
        for attempt in range(2):
            # The record the topic refuses, and one in flight behind it.
            refused = await producer.send(topic, b"x" * 200_000, partition=0)
            behind = await producer.send(topic, f"behind {attempt}".encode(), partition=0)
            outcomes = await asyncio.gather(refused, behind, return_exceptions=True)
            assert isinstance(outcomes[0], MessageSizeTooLargeError)
        later = [await producer.send(topic, f"later {i}".encode(), partition=0) for i in range(5)]
        await asyncio.gather(*later)
    finally:
        await producer.stop()
    values = [r.value for r in await read_topic(servers.kafka, topic, expected=7)]
    assert values[-5:] == [f"later {i}".encode() for i in range(5)]
    assert "numbering the producer's batches afresh" in caplog.text
