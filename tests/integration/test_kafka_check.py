"""The check a process makes of Kafka before it starts, against the local broker: a topic
is missing only once the brokers' metadata has had time to show it."""

import asyncio

import pytest

from roadwatch.kafka.check import TOPIC_METADATA_LAG, KafkaRefused, check_kafka
from roadwatch.kafka.topics import TopicSpec, create_missing_topics
from tests.helpers.servers import Servers, unique

pytestmark = pytest.mark.kafka


async def test_a_topic_created_as_a_process_starts_is_found_not_called_missing(
    servers: Servers,
) -> None:
    settings = servers.settings.model_copy(update={"kafka_broker_url": servers.kafka})
    name = unique("test.topic").replace("_", ".")
    check = asyncio.create_task(check_kafka(settings, topics=[name]))
    # The topic comes a moment after the check began: by then the check has asked for the
    # metadata once (a check that asked only once refused here, as before the fix). The
    # pause is the scenario, not a wait for something to happen.
    await asyncio.sleep(TOPIC_METADATA_LAG / 10)
    await create_missing_topics({"bootstrap_servers": servers.kafka}, [TopicSpec(name, 1, {})])

    await check


async def test_a_topic_that_never_comes_is_named_as_missing(servers: Servers) -> None:
    settings = servers.settings.model_copy(update={"kafka_broker_url": servers.kafka})
    name = unique("test.topic").replace("_", ".")

    with pytest.raises(KafkaRefused, match=f"sees no topic {name}: create it"):
        await check_kafka(settings, topics=[name])
