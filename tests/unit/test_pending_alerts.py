"""The alerts that wait for their batch's transaction: each commit takes those below its
offset, of its partition, and a partition given up takes its own with it."""

import uuid

from roadwatch.domain import Alert, RuleRef, Source
from roadwatch.indexer.transactions import PendingAlerts
from roadwatch.kafka.types import TopicPartition
from tests.helpers.factories import make_detection

RULE = RuleRef(uuid.uuid4(), "SUVs")
ZERO, ONE = TopicPartition("d", 0), TopicPartition("d", 1)


def alert(partition: TopicPartition, offset: int) -> Alert:
    source = Source(partition.topic, partition.partition, offset)
    return Alert(make_detection(source=source), (RULE,))


async def test_a_commit_takes_the_alerts_below_its_offset_of_its_partition_only() -> None:
    pending = PendingAlerts()
    early, late, other = alert(ZERO, 2), alert(ZERO, 9), alert(ONE, 0)
    await pending.publish([early, late, other])

    assert pending.before(ZERO, 5) == [early]
    pending.settled(ZERO, 5)
    assert pending.before(ZERO, 100) == [late]
    assert pending.before(ONE, 1) == [other]


async def test_a_partition_given_up_forgets_its_alerts() -> None:
    pending = PendingAlerts()
    await pending.publish([alert(ZERO, 0), alert(ONE, 0)])
    pending.forget([ZERO])
    assert pending.before(ZERO, 10) == []
    assert len(pending.before(ONE, 10)) == 1
