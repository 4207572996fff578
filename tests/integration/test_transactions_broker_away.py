"""A partition's commit cut short while the broker is away (the indexer stopping, or a
deadline passing) ends without waiting for the broker, and loses nothing: once the broker
is back, the retry publishes the batch's alerts once and commits its offset."""

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import orjson
import pytest

from roadwatch.bootstrap.indexer import indexer_producer
from roadwatch.domain import Alert, RuleRef, Source
from roadwatch.indexer.pending import PendingAlerts
from roadwatch.indexer.transactions import PartitionTransactions
from roadwatch.infra.kafka import KafkaService
from roadwatch.kafka.types import OffsetAndMetadata, TopicPartition
from roadwatch.settings import Settings
from tests.helpers.factories import make_detection
from tests.helpers.kafka import committed_of_group, no_member_of_the_group, read_topic
from tests.helpers.own_broker import own_broker
from tests.helpers.servers import Servers, unique

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

RULE = RuleRef(uuid.uuid4(), "SUVs")
# aiokafka's abort waited until the broker came back: here, never within the test.
ENDS_WITHIN = 60.0


@pytest.fixture
async def broker(servers: Servers, tmp_path: Path) -> AsyncIterator[tuple[KafkaService, Settings]]:
    """A broker of the test's own, to stop and start again."""
    kafka, settings = own_broker(servers.settings, tmp_path / "state", prefix="away")
    await kafka.up()
    try:
        yield kafka, settings
    finally:
        await asyncio.to_thread(kafka.down)
        shutil.rmtree(tmp_path / "state", ignore_errors=True)


@pytest.mark.timeout(420)
async def test_a_commit_cancelled_while_the_broker_is_away_ends_and_the_retry_loses_nothing(
    broker: tuple[KafkaService, Settings],
) -> None:
    kafka, settings = broker
    partition = TopicPartition(settings.detections_topic, 0)
    pending, group = PendingAlerts(), unique("indexer")
    transactions = PartitionTransactions(
        partial(indexer_producer, settings),
        alerts_topic=settings.alerts_topic,
        group=group,
        pending=pending,
        holds=no_member_of_the_group,
        committed=committed_of_group(settings.kafka_broker_url, group),
    )
    await transactions.assigned({partition})
    alerts = [
        Alert(make_detection(source=Source(partition.topic, 0, offset)), (RULE,))
        for offset in range(3)
    ]
    await pending.publish(alerts)
    try:
        await asyncio.to_thread(kafka.down)
        committing = asyncio.create_task(transactions.commit({partition: OffsetAndMetadata(3, "")}))
        await asyncio.sleep(3)
        assert not committing.done(), "the commit did not wait for the broker"
        cancelled_at = time.monotonic()
        committing.cancel()
        await asyncio.wait([committing], timeout=ENDS_WITHIN)
        assert committing.done(), f"the cancelled commit still waits after {ENDS_WITHIN:.0f} s"
        print(f"the cancelled commit ended in {time.monotonic() - cancelled_at:.1f} s")

        await kafka.up()
        await transactions.commit({partition: OffsetAndMetadata(3, "")})
        records = await read_topic(
            settings.kafka_broker_url, settings.alerts_topic, expected=3, within=30, settle=2
        )
        published = [orjson.loads(r.value)["id"] for r in records if r.value is not None]
        assert published == [str(alert.detection.id) for alert in alerts]
        assert pending.before(partition, 3) == []
    finally:
        async with asyncio.timeout(ENDS_WITHIN):
            await transactions.close()
