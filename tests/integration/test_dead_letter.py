"""Bad input never stops the indexer and is never dropped: it goes to the dead-letter topic."""

import orjson
import pytest

from roadwatch.bootstrap.stores import detection_store
from roadwatch.parsing import MAX_MESSAGE_BYTES
from roadwatch.stores.detection_store import DetectionStore
from tests.helpers.kafka import header, read_topic, send_values, stream_settings
from tests.helpers.processes import indexer_running
from tests.helpers.servers import Servers
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


async def test_a_mixed_stream_stores_every_valid_message_and_dead_letters_the_rest(
    servers: Servers, postgres_database: str
) -> None:
    settings = await stream_settings(servers, store_url=postgres_database)
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
