"""The check a process makes of Kafka before it starts, against the local broker: a topic
is missing only once the brokers' metadata has had time to show it."""

import asyncio

import pytest

from roadwatch.kafka.check import TOPIC_METADATA_LAG, KafkaRefused, check_kafka
from roadwatch.kafka.topics import TopicSpec, create_missing_topics
from tests.helpers.relays import pipe
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


class ClosingBroker:
    """A listener in front of the local broker that takes the first `closes` handshakes and
    closes them, as a broker going down or coming up may, then passes the rest through;
    with `closes=None`, every one, as a listener of another protocol does."""

    def __init__(self, broker: str, closes: int | None) -> None:
        self._host, _, port = broker.rpartition(":")
        self._port = int(port)
        self._closes = closes
        self.closed = 0

    async def __aenter__(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"127.0.0.1:{port}"

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await reader.read(65536)
        if not first:  # a TCP probe: connected, and gone
            writer.close()
            return
        if self._closes is None or self.closed < self._closes:
            self.closed += 1
            writer.close()
            return
        upstream_reader, upstream_writer = await asyncio.open_connection(self._host, self._port)
        upstream_writer.write(first)
        await asyncio.gather(
            pipe(reader, upstream_writer), pipe(upstream_reader, writer), return_exceptions=True
        )


async def test_a_broker_that_closes_a_handshake_or_two_is_not_called_misconfigured(
    servers: Servers,
) -> None:
    broker = ClosingBroker(servers.kafka, closes=2)
    async with broker as address:
        settings = servers.settings.model_copy(update={"kafka_broker_url": address})
        await check_kafka(settings, topics=[])
    assert broker.closed == 2


async def test_a_listener_that_closes_every_handshake_is_named_as_misconfigured(
    servers: Servers,
) -> None:
    async with ClosingBroker(servers.kafka, closes=None) as address:
        settings = servers.settings.model_copy(update={"kafka_broker_url": address})
        with pytest.raises(KafkaRefused, match="does the listener speak PLAINTEXT"):
            await check_kafka(settings, topics=[])
