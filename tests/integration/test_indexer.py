"""The indexer against the real broker and stores: everything stored once, the right alerts."""

import random
from collections import Counter

import orjson
import pytest

from roadwatch.catalog.vehicles import load_catalog
from roadwatch.stores.detection_store import DetectionStore
from roadwatch.watchlists.rules import SEED_ID
from tests.helpers.kafka import read_topic, send_values, stream_settings, value_of
from tests.helpers.processes import indexer_running
from tests.helpers.servers import Servers
from tests.helpers.stored import derived_from_record, stored_at_least
from tests.helpers.waiting import eventually

pytestmark = pytest.mark.kafka

SUSPICIOUS = "suv, Convertible"


def is_suspicious(category: str) -> bool:
    return any(part.strip().lower() in {"suv", "convertible"} for part in category.split(","))


async def test_every_detection_produced_is_stored_once_and_the_suspicious_ones_alerted(
    servers: Servers, store_url: str, store: DetectionStore
) -> None:
    settings = await stream_settings(servers, store_url=store_url, suspicious=SUSPICIOUS)
    rng = random.Random(7)
    vehicles = [rng.choice(load_catalog()) for _ in range(3000)]
    handmade = [
        {"year": 2015, "MAKE": "Jeep", "model": "Wrangler", "CATEGORY": " Pickup , suv "},
        {"Year": 2010, "Make": "BMW", "Model": "M3", "Category": "Coupe, Convertible"},
        {"Year": 2012, "Make": "Honda", "Model": "Civic", "Category": "Sedan, Coupe"},
    ]
    messages = [v.as_message() for v in vehicles] + [orjson.dumps(m) for m in handmade]
    expected_categories = [v.category for v in vehicles] + [
        " Pickup , suv ".strip(),
        "Coupe, Convertible",
        "Sedan, Coupe",
    ]

    await send_values(servers.kafka, settings.detections_topic, messages)
    async with indexer_running(settings):
        await eventually(
            lambda: stored_at_least(store, len(messages)),
            within=120,
            what=f"{len(messages)} stored",
        )
        alerts = await read_topic(
            servers.kafka,
            settings.alerts_topic,
            expected=sum(map(is_suspicious, expected_categories)),
        )

    stored = await store.list(limit=len(messages) + 10)
    assert len(stored) == len(messages)
    assert Counter((d.year, d.make, d.model, d.category) for d in stored) == Counter(
        [(v.year, v.make, v.model, v.category) for v in vehicles]
        + [
            (2015, "Jeep", "Wrangler", "Pickup , suv"),
            (2010, "BMW", "M3", "Coupe, Convertible"),
            (2012, "Honda", "Civic", "Sedan, Coupe"),
        ]
    )
    assert all(derived_from_record(d) for d in stored)
    assert await store.count_by_make() == await store.group_by_make()

    suspicious_ids = {str(d.id) for d in stored if is_suspicious(d.category)}
    alert_bodies = [orjson.loads(value_of(record)) for record in alerts]
    assert [body["id"].encode() for body in alert_bodies] == [r.key for r in alerts]
    assert Counter(body["id"] for body in alert_bodies) == Counter(suspicious_ids)
    by_id = {str(d.id): d for d in stored}
    for body in alert_bodies:
        detection = by_id[body["id"]]
        assert body == {
            "id": str(detection.id),
            "timestamp": detection.timestamp.isoformat(timespec="milliseconds"),
            "year": detection.year,
            "make": detection.make,
            "model": detection.model,
            "category": detection.category,
            # No rule was ever written: the seed rule, from SUSPICIOUS_VEHICLE, is in force.
            "rules": [{"id": str(SEED_ID), "name": "suspicious-vehicle"}],
            "rules_matched": 1,
        }
