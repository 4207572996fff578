"""Bad input never stops the indexer and is never dropped: it goes to the dead-letter topic."""

import orjson
import pytest

from roadwatch.bootstrap.clients import kafka_producer
from roadwatch.bootstrap.stores import detection_store
from roadwatch.kafka.types import MessageSizeTooLargeError
from roadwatch.parsing import MAX_MESSAGE_BYTES
from roadwatch.stores.detection_store import DetectionStore
from roadwatch.webhooks.dead_letters import DeadLetters
from tests.helpers.kafka import header, read_topic, send_values, stream_settings
from tests.helpers.processes import indexer_running
from tests.helpers.servers import Servers, create_topic
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

VALID = {"Year": 2011, "Make": "Toyota", "Model": "Land Cruiser", "Category": "SUV"}
MALFORMED: dict[bytes | None, str] = {
    b"this is not json": "not_json",
    b'["Toyota", 2011]': "not_an_object",
    orjson.dumps({"Make": "Toyota", "Model": "Corolla", "Category": "Sedan"}): "missing_field",
    orjson.dumps({**VALID, "Year": "2011"}): "invalid_field",
    orjson.dumps({**VALID, "Make": ""}): "invalid_field",
    orjson.dumps({**VALID, "id": "nope"}): "invalid_field",
    orjson.dumps({**VALID, "Model": "x" * MAX_MESSAGE_BYTES}): "too_large",
    None: "not_json",
}


# Letters sent in their batch's transaction (the default), or at once by the indexer's one
# producer, which alerts share then.
EXACTLY_ONCE = pytest.mark.parametrize("exactly_once", [True, False], ids=["in", "outside"])


@EXACTLY_ONCE
async def test_a_mixed_stream_stores_every_valid_message_and_dead_letters_the_rest(
    servers: Servers, postgres_database: str, exactly_once: bool
) -> None:
    settings = (await stream_settings(servers, store_url=postgres_database)).model_copy(
        update={"alerts_exactly_once": exactly_once}
    )
    valid = [orjson.dumps({**VALID, "Year": 1990 + i % 30}) for i in range(200)]
    stream = [
        message for pair in zip(valid, list(MALFORMED) * 25, strict=False) for message in pair
    ]
    stream += valid[len(MALFORMED) * 25 :]
    store = detection_store(postgres_database)
    await store.open()
    try:
        async with indexer_running(settings) as indexer:
            await send_values(servers.kafka, settings.detections_topic, stream, key=b"cam-1")
            await eventually(
                lambda: _count_is(store, len(valid)), within=60, what="every valid one stored"
            )
            dead = await read_topic(
                servers.kafka, settings.dead_letter_topic, expected=len(stream) - len(valid)
            )
            assert not indexer.done(), "the indexer stopped"
            # Still working after all that: one more valid detection goes through.
            await send_values(servers.kafka, settings.detections_topic, [valid[0]])
            await eventually(
                lambda: _count_is(store, len(valid) + 1), within=30, what="indexer still indexing"
            )
    finally:
        await store.close()

    assert len(dead) == len(stream) - len(valid)
    for record in dead:
        assert record.value in MALFORMED
        assert header(record, "roadwatch.reason").decode() == MALFORMED[record.value]
        assert header(record, "roadwatch.detail")
        assert header(record, "roadwatch.source.topic").decode() == settings.detections_topic
        assert record.key == b"cam-1"
    sources = {
        (header(r, "roadwatch.source.partition"), header(r, "roadwatch.source.offset"))
        for r in dead
    }
    assert len(sources) == len(dead), "a rejected message was dead-lettered twice"


async def _count_is(store: DetectionStore, expected: int) -> bool:
    return await store.count() == expected


@EXACTLY_ONCE
async def test_a_dead_letter_topic_taking_less_than_a_letter_gets_it_cut_to_fit(
    servers: Servers, postgres_database: str, caplog: pytest.LogCaptureFixture, exactly_once: bool
) -> None:
    # An operator's dead-letter topic taking 20 KB at most, and a record of 200 KB that the
    # detections topic took: refused as too large, its letter held up every record behind it.
    small = 20_000
    settings = (await stream_settings(servers, store_url=postgres_database)).model_copy(
        update={
            "dead_letter_topic": await create_topic(
                servers.kafka, config={"max.message.bytes": str(small)}
            ),
            "alerts_exactly_once": exactly_once,
        }
    )
    store = detection_store(postgres_database)
    await store.open()
    try:
        async with indexer_running(settings) as indexer:
            stream = [b"x" * 200_000, orjson.dumps(VALID)]
            await send_values(servers.kafka, settings.detections_topic, stream, key=b"cam-1")
            await eventually(
                lambda: _count_is(store, 1), within=60, what="the detection behind it stored"
            )
            (letter,) = await read_topic(servers.kafka, settings.dead_letter_topic, expected=1)
            assert not indexer.done(), "the indexer stopped"
    finally:
        await store.close()
    assert header(letter, "roadwatch.reason") == b"too_large"
    assert header(letter, "roadwatch.value_length") == b"200000"
    assert len(letter.value or b"") < small
    assert "refused a dead letter of up to 1000000 bytes as too large" in caplog.text


async def test_the_deliverers_dead_letters_fit_a_topic_taking_less(servers: Servers) -> None:
    topic = await create_topic(servers.kafka, config={"max.message.bytes": "20000"})
    producer = kafka_producer(servers.settings)
    await producer.start()
    try:
        letters = DeadLetters(producer, topic=topic)
        records = [(b"y" * 200_000, b"k", "not an alert"), (b"{}", None, "not an alert")]
        refused = 0
        # As the deliverer's retry does: each refusal fits the letters to a quarter.
        while True:
            try:
                await letters.records(records)
                break
            except MessageSizeTooLargeError:
                refused += 1
                assert refused < 5, "still refused at the smallest letters"
        assert refused == 3  # 1,000,000, 250,000, then 62,500 bytes
    finally:
        await producer.stop()
    sent = await read_topic(servers.kafka, topic, expected=2)
    assert [r.value for r in sent][-1] == b"{}"
    assert header(sent[-2], "roadwatch.value_length") == b"200000"
