"""A producer fenced by a newer one of its transactional id, as an indexer's is when another
takes its partition over, stops without asyncio logging aiokafka's unread failures as errors;
the failure still reaches whoever awaits the producer's sends."""

import asyncio
import gc

import pytest

from roadwatch.bootstrap.clients import kafka_producer
from roadwatch.kafka.types import ProducerFenced
from tests.helpers.servers import Servers, create_topic, unique

pytestmark = pytest.mark.kafka


async def test_a_fenced_producer_stops_without_errors_in_the_log(
    servers: Servers, caplog: pytest.LogCaptureFixture
) -> None:
    # What earlier tests left for the collector is logged now, not during this test.
    gc.collect()
    await asyncio.sleep(0)
    caplog.clear()
    topics = [await create_topic(servers.kafka), await create_topic(servers.kafka)]
    transactional_id = unique("fenced")
    fenced = kafka_producer(servers.settings, transactional_id=transactional_id)
    newer = kafka_producer(servers.settings, transactional_id=transactional_id)
    await fenced.start()
    try:
        await fenced.begin_transaction()
        await (await fenced.send(topics[0], b"before", partition=0))
        await newer.start()
        # A partition new to the transaction: adding it is what the broker refuses.
        batch = fenced.create_batch()
        batch.append(key=None, value=b"after", timestamp=None)
        sent = await fenced.send_batch(batch, topics[1], partition=0)
        outcome = (await asyncio.gather(sent, return_exceptions=True))[0]
        assert isinstance(outcome, ProducerFenced)
    finally:
        await fenced.stop()
        await newer.stop()
    del fenced, batch, sent, outcome
    gc.collect()
    await asyncio.sleep(0)
    unread = [r for r in caplog.records if "never retrieved" in r.getMessage()]
    assert not unread, [r.getMessage() for r in unread]
