"""Hostile records on the detections topic: each one is stored once or dead-lettered, and the
indexer stays alive and ready, on every store."""

import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer

from roadwatch.detection_ids import derived_id
from roadwatch.domain import Source
from roadwatch.kafka.record import Record
from roadwatch.settings import Settings
from roadwatch.stores.detection_store import DetectionFilter, DetectionStore
from tests.helpers.kafka import header, read_topic, send_values, stream_settings, value_of
from tests.helpers.ports import free_port
from tests.helpers.processes import indexer_running, start_indexer_process
from tests.helpers.servers import Servers, unique
from tests.helpers.stored import stored_at_least
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka]

SUV = {"Year": 2011, "Make": "Toyota", "Model": "Land Cruiser", "Category": "SUV"}
SEDAN = {"Year": 2012, "Make": "Honda", "Model": "Civic", "Category": "Sedan"}
HIDDEN_SUV = {**SUV, "Make": "Hidden", "Category": "S\u200bUV"}
FORGED_HEADERS = [("roadwatch.reason", b"all_fine"), ("roadwatch.source.offset", b"0")]
PARTITIONS = 6


@dataclass
class Send:
    value: bytes | None
    # The reason it must be dead-lettered for; None: it must be stored.
    reason: str | None = None
    timestamp_ms: int | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    # Carries the id of the partition's first record, which another record holds.
    forges_first: bool = False


def hostile_partition() -> list[Send]:
    """Good records interleaved with one bad record of every kind."""
    bad = [
        Send(b'{"Year": 2011, "Make": "\xff", "Model": "X", "Category": "SUV"}', "not_json"),
        Send(orjson.dumps({**SUV, "Make": "Ford\u0000"}), "invalid_field"),
        Send(orjson.dumps({**SUV, "timestamp": "0001-01-01T00:00:00+01:00"}), "invalid_field"),
        Send(orjson.dumps({**SUV, "timestamp": "9999-12-31T23:59:59-01:00"}), "invalid_field"),
        # A camera whose clock says 1999. (One that says the day after tomorrow is refused by
        # the broker itself, at its default log.message.timestamp.after.max.ms.)
        Send(orjson.dumps(SUV), "invalid_field", timestamp_ms=946_684_799_000),
        Send(None, "not_json"),
        Send(b"[]", "not_an_object", headers=FORGED_HEADERS),
        Send(orjson.dumps({**SUV, "Year": "MMXI"}), "invalid_field"),
        Send(orjson.dumps({**SUV, "Model": "x" * 70_000}), "too_large"),
        Send(orjson.dumps({**SUV, "Make": "Forger"}), "id_conflict", forges_first=True),
    ]
    sends = [Send(orjson.dumps(SUV))]
    for record in bad:
        sends += [Send(orjson.dumps(SEDAN)), record, Send(orjson.dumps(HIDDEN_SUV))]
    return sends


@dataclass
class Sent:
    good: set[Source] = field(default_factory=set)
    bad: dict[Source, Send] = field(default_factory=dict)
    # (the record whose id was taken, the record that carries it too)
    pairs: list[tuple[Source, Source]] = field(default_factory=list)


async def send_hostile_stream(settings: Settings) -> Sent:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_broker_url, acks="all")
    await producer.start()
    sent = Sent()
    try:
        for partition in range(PARTITIONS):
            first: Source | None = None
            first_id: uuid.UUID | None = None
            for record in hostile_partition():
                value = record.value
                if record.forges_first:
                    assert first_id is not None
                    value = orjson.dumps({**orjson.loads(value or b"{}"), "id": str(first_id)})
                # A time of its own, which the id derived for the first record holds.
                timestamp_ms = record.timestamp_ms or time.time_ns() // 1_000_000
                acked = await (
                    await producer.send(
                        settings.detections_topic,
                        value,
                        key=b"camera-7",  # a tombstone needs one
                        partition=partition,
                        timestamp_ms=timestamp_ms,
                        headers=record.headers or None,
                    )
                )
                source = Source(settings.detections_topic, partition, acked.offset)
                if first is None:
                    first = source
                    first_id = derived_id(source, timestamp_ms)
                if record.forges_first:
                    sent.pairs.append((first, source))
                    sent.good.discard(first)
                elif record.reason is None:
                    sent.good.add(source)
                else:
                    sent.bad[source] = record
    finally:
        await producer.stop()
    return sent


def source_of(record: Record) -> Source:
    return Source(
        header(record, "roadwatch.source.topic").decode(),
        int(header(record, "roadwatch.source.partition")),
        int(header(record, "roadwatch.source.offset")),
    )


@pytest.mark.slow
async def test_a_stream_laced_with_every_kind_of_bad_record_loses_nothing_and_stalls_nothing(
    servers: Servers, store_url: str, store: DetectionStore, tmp_path: Path
) -> None:
    settings = await stream_settings(servers, store_url=store_url)
    port = free_port()
    indexer = start_indexer_process(
        settings, group=unique("group"), log=tmp_path / "indexer.log", metrics_port=port
    )
    try:
        started = time.monotonic()
        sent = await send_hostile_stream(settings)
        expected_stored = len(sent.good) + len(sent.pairs)

        async def all_stored() -> bool:
            return await stored_at_least(store, expected_stored)

        await eventually(all_stored, within=30, what="every good record stored")
        dead = await read_topic(
            servers.kafka,
            settings.dead_letter_topic,
            expected=len(sent.bad) + len(sent.pairs),
            within=30 - (time.monotonic() - started),
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            ready = await client.get("/readyz")
        assert indexer.poll() is None, "the indexer exited"
        assert ready.status_code == 200, ready.text
        assert time.monotonic() - started < 30
        stored = await store.list(limit=expected_stored + 100)
        stored_suvs = {str(d.id) for d in stored if d.category == "SUV"}
        alerts = await read_topic(servers.kafka, settings.alerts_topic, expected=len(stored_suvs))
    finally:
        indexer.send_signal(signal.SIGTERM)
        exit_code = indexer.wait(timeout=30)
    assert exit_code == 0

    # Every record in exactly one place: stored once, or dead-lettered once.
    stored_sources = [d.source for d in stored]
    dead_sources = [source_of(r) for r in dead]
    assert len(stored_sources) == len(set(stored_sources)) == expected_stored
    assert len(dead_sources) == len(set(dead_sources))
    assert not set(stored_sources) & set(dead_sources)
    assert sent.good <= set(stored_sources)
    assert set(sent.bad) <= set(dead_sources)
    reasons = {source_of(r): header(r, "roadwatch.reason").decode() for r in dead}
    assert {s: reasons[s] for s in sent.bad} == {s: b.reason for s, b in sent.bad.items()}

    # Of two records with one id, one is stored and the other refused, naming both.
    for taken, forger in sent.pairs:
        (kept,) = {taken, forger} & set(stored_sources)
        (refused,) = {taken, forger} - {kept}
        assert reasons[refused] == "id_conflict"
        (record,) = [r for r in dead if source_of(r) == refused]
        detail = header(record, "roadwatch.detail").decode()
        assert f"@{taken.offset}" in detail
        assert f"@{forger.offset}" in detail

    # A sender cannot forge the reason or the source: its headers are kept aside.
    for record in dead:
        own = [name for name, _value in record.headers if name.startswith("roadwatch.")]
        assert len(own) == len(set(own)) == 5
    forging = [r for r in dead if source_of(r) in sent.bad and sent.bad[source_of(r)].headers]
    assert len(forging) == PARTITIONS
    for record in forging:
        assert ("original.roadwatch.reason", b"all_fine") in record.headers

    # Hidden behind a zero-width space, an SUV is still stored as one and raises its alert.
    hidden = await store.list(DetectionFilter(make="Hidden"), limit=1000)
    hidden_sent = [r for r in hostile_partition() if r.value == orjson.dumps(HIDDEN_SUV)]
    assert len(hidden) == len(hidden_sent) * PARTITIONS
    assert {d.category for d in hidden} == {"SUV"}
    assert sorted(orjson.loads(value_of(r))["id"] for r in alerts) == sorted(stored_suvs)


async def test_a_record_carrying_a_stored_records_id_is_dead_lettered_and_replaces_nothing(
    servers: Servers, store_url: str, store: DetectionStore
) -> None:
    settings = await stream_settings(servers, store_url=store_url)
    async with indexer_running(settings):
        await send_values(servers.kafka, settings.detections_topic, [orjson.dumps(SUV)])
        await eventually(lambda: _holds(store, 1), within=30, what="the first record stored")
        (original,) = await store.list()
        forged = {**SUV, "Make": "Forged", "id": str(original.id)}
        await send_values(servers.kafka, settings.detections_topic, [orjson.dumps(forged)])
        (dead,) = await read_topic(servers.kafka, settings.dead_letter_topic, expected=1)
        alerts = await read_topic(servers.kafka, settings.alerts_topic, expected=1)

    assert header(dead, "roadwatch.reason") == b"id_conflict"
    assert await store.list() == [original]
    assert [orjson.loads(value_of(a))["make"] for a in alerts] == ["Toyota"]


async def _holds(store: DetectionStore, count: int) -> bool:
    return await store.count() == count
