"""The API's alert feed against the real broker: records that are not alerts are skipped, a
failure restarts the feed while its clients keep their streams, and a client that falls
behind is dropped alone."""

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from roadwatch.api.alerts_feed import AlertEvent, ClientTooSlow, FeedDown, KafkaAlertFeed
from tests.helpers.kafka import send_values
from tests.helpers.servers import Servers, create_topic, unique
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka]

ALERT = {
    "id": "6d0e8f4e-8c8e-4a39-9a0b-8a1e2f3c4d5e",
    "timestamp": "2026-12-05T12:00:00.000+00:00",
    "year": 2018,
    "make": "Jeep",
    "model": "Wrangler",
    "category": "SUV",
    "rules": [],
}
Stream = AsyncGenerator[AlertEvent, None]


def alert(n: int) -> bytes:
    return orjson.dumps({**ALERT, "n": n})


async def next_alert(events: Stream) -> dict[str, object]:
    event = await asyncio.wait_for(anext(events), timeout=15)
    if event.kind == "position":
        event = await asyncio.wait_for(anext(events), timeout=15)
    decoded = orjson.loads(event.data)
    assert isinstance(decoded, dict)
    return decoded


@dataclass
class Clients:
    streams: list[Stream]
    # Each stream's first alert, awaited from the moment it subscribed.
    firsts: "list[asyncio.Task[dict[str, object]]]"


@asynccontextmanager
async def following(feed: KafkaAlertFeed, clients: int = 1) -> AsyncIterator[Clients]:
    """The feed started, with `clients` subscribed; all stopped on leaving."""
    await feed.start()
    streams = [feed.events() for _ in range(clients)]
    firsts = [asyncio.create_task(next_alert(stream)) for stream in streams]
    try:

        async def all_there() -> bool:
            return feed.clients == clients

        await eventually(all_there, within=5, what="the clients subscribed")
        yield Clients(streams, firsts)
    finally:
        for first in firsts:
            first.cancel()
        await asyncio.gather(*firsts, return_exceptions=True)
        for stream in streams:
            await stream.aclose()
        await feed.stop()


async def test_records_that_are_not_alerts_are_skipped_and_counted_and_the_feed_goes_on(
    servers: Servers,
) -> None:
    topic = await create_topic(servers.kafka, partitions=1)
    skipped = 0

    def count() -> None:
        nonlocal skipped
        skipped += 1

    feed = KafkaAlertFeed(kafka={"bootstrap_servers": servers.kafka}, topic=topic, skipped=count)
    async with following(feed) as clients:
        junk: list[bytes | None] = [
            None,
            b"\xff\xfe",
            b"[1, 2]",
            b"not json",
            # A JSON object, but no alert.
            b'{"id": "6d0e\xe2\x80\xa6", "make": "Jeep"}',
            alert(1),
        ]
        await send_values(servers.kafka, topic, junk, key=b"alert")

        assert (await clients.firsts[0])["n"] == 1
        assert skipped == 5
        await feed.ping()


async def test_an_alert_whose_transaction_was_aborted_never_reaches_a_client(
    servers: Servers,
) -> None:
    topic = await create_topic(servers.kafka, partitions=1)
    feed = KafkaAlertFeed(kafka={"bootstrap_servers": servers.kafka}, topic=topic)
    async with following(feed) as clients:
        producer = AIOKafkaProducer(
            bootstrap_servers=servers.kafka, transactional_id=unique("aborted")
        )
        await producer.start()
        try:
            await producer.begin_transaction()
            await (await producer.send(topic, alert(1)))
            await producer.abort_transaction()
            async with producer.transaction():
                await producer.send(topic, alert(2))
        finally:
            await producer.stop()
        assert (await clients.firsts[0])["n"] == 2


async def test_a_failed_feed_restarts_from_where_it_was_and_clients_keep_their_streams(
    servers: Servers,
) -> None:
    topic = await create_topic(servers.kafka, partitions=2)
    feed = KafkaAlertFeed(kafka={"bootstrap_servers": servers.kafka}, topic=topic, first_delay=2.0)
    async with following(feed) as clients:
        await send_values(servers.kafka, topic, [alert(1)], key=b"alert")
        assert (await clients.firsts[0])["n"] == 1

        # The consumer is stopped from under the feed, as a fatal client error would.
        assert feed._consumer.current is not None
        await feed._consumer.current.stop()

        async def down() -> bool:
            try:
                await feed.ping()
            except FeedDown as error:
                return "down" in str(error)
            return False

        await eventually(down, within=10, what="the feed saying it is down")
        await send_values(servers.kafka, topic, [alert(2), alert(3)], key=b"alert")

        stream = clients.streams[0]
        assert {(await next_alert(stream))["n"] for _ in range(2)} == {2, 3}
        await feed.ping()
        assert feed.clients == 1


async def test_a_client_that_falls_behind_its_buffer_is_dropped_and_the_others_are_not(
    servers: Servers,
) -> None:
    topic = await create_topic(servers.kafka, partitions=1)
    feed = KafkaAlertFeed(kafka={"bootstrap_servers": servers.kafka}, topic=topic, client_buffer=3)
    async with following(feed, clients=2) as clients:
        await send_values(servers.kafka, topic, [alert(1)], key=b"alert")
        assert [(await first)["n"] for first in clients.firsts] == [1, 1]
        slow, quick = clients.streams

        # One at a time, read by the quick client as they come; the slow one reads none.
        for n in range(2, 12):
            await send_values(servers.kafka, topic, [alert(n)], key=b"alert")
            assert (await next_alert(quick))["n"] == n

        with pytest.raises(ClientTooSlow):
            await next_alert(slow)


async def _resumed(feed: KafkaAlertFeed, last_event_id: str, count: int) -> list[AlertEvent]:
    events = feed.events(last_event_id)
    try:
        position = await asyncio.wait_for(anext(events), timeout=15)
        assert position.kind == "position"
        return [await asyncio.wait_for(anext(events), timeout=15) for _ in range(count)]
    finally:
        await events.aclose()


async def test_a_new_feed_resumes_clients_from_its_window_filled_at_start(
    servers: Servers,
) -> None:
    topic = await create_topic(servers.kafka, partitions=1)
    await send_values(servers.kafka, topic, [alert(n) for n in range(50)], key=b"alert")
    # As after a restart of the API: the feed is new, its clients resume.
    feed = KafkaAlertFeed(kafka={"bootstrap_servers": servers.kafka}, topic=topic)
    await feed.start()
    try:
        resumed = await asyncio.gather(*(_resumed(feed, "0:10", 40) for _ in range(40)))
    finally:
        await feed.stop()
    for events in resumed:
        assert [orjson.loads(e.data)["n"] for e in events] == list(range(10, 50))
        assert events[-1].id == "0:50"


async def test_a_resume_from_further_back_than_the_window_is_told_of_the_gap(
    servers: Servers,
) -> None:
    topic = await create_topic(servers.kafka, partitions=1)
    await send_values(servers.kafka, topic, [alert(n) for n in range(50)], key=b"alert")
    feed = KafkaAlertFeed(kafka={"bootstrap_servers": servers.kafka}, topic=topic, resume_window=20)
    await feed.start()
    try:
        gap, *missed = await _resumed(feed, "0:0", 1 + 20)
    finally:
        await feed.stop()
    assert gap.kind == "gap"
    told = orjson.loads(gap.data)
    assert (told["missed_from_offset"], told["resumed_at_offset"]) == (0, 30)
    assert "/alerts/history" in told["detail"]
    assert gap.id == "0:30"
    assert [orjson.loads(e.data)["n"] for e in missed] == list(range(30, 50))
