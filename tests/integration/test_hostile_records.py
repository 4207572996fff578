"""Records as an attacker with produce rights writes them (any header names, keys, values,
sizes and codecs), on every topic a roadwatch process reads. After each, the process that
reads it is still at work within seconds: a canary is stored, streamed, delivered or
followed, and the process is alive and ready.

The fuzz tests run ROADWATCH_FUZZ_EXAMPLES examples each (12 unless set; `make fuzz` runs
more). A failing example is shown as generated: each takes a canary's wait, too long to
shrink it.
"""

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from roadwatch.watchlists.rules import Rule, rule_to_json
from tests.helpers.kafka import header, read_topic, send_values
from tests.helpers.ports import free_port
from tests.helpers.processes import start_api
from tests.helpers.raw_records import CODECS, RawRecord, RefusedByBroker, produce_raw
from tests.helpers.servers import Servers
from tests.helpers.system import System, system_running
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

FUZZ_EXAMPLES = int(os.environ.get("ROADWATCH_FUZZ_EXAMPLES", "12"))
# Each example takes up to a second or so: make fuzz's hundreds need more than a test's 180 s.
FUZZ_SECONDS = 120 + 3 * FUZZ_EXAMPLES
fuzzing = settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    # A failing example takes a canary's whole wait: it is shown as found, not shrunk.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
BAD_NAME = b"\xff\xfe"


@pytest.fixture(scope="module")
async def system(
    servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[System]:
    async with system_running(servers, logs=tmp_path_factory.mktemp("system")) as running:
        yield running


async def write(system: System, topic: str, records: list[RawRecord], compression: str) -> None:
    """As one batch; what the broker refuses (a timestamp out of its range, a compacted
    topic's record without a key) never reaches a reader, and is no test."""
    with contextlib.suppress(RefusedByBroker):
        await produce_raw(system.bootstrap, topic, records, compression=compression)


# What an attacker writes: near-valid values, for each topic, and any bytes at all.
header_names = st.binary(max_size=16) | st.sampled_from([BAD_NAME, b"\x00", b"roadwatch.reason"])
texts = st.text(max_size=40) | st.sampled_from(["", "\x00", "S\u200bUV", "x" * 5000])
detections = st.fixed_dictionaries(
    {
        # What orjson encodes: up to 64 bits; a number past them is written below.
        "Year": st.integers(-(2**63), 2**64 - 1) | texts,
        "Make": texts,
        "Model": texts,
        "Category": texts,
    }
).map(orjson.dumps) | st.integers(2**64, 2**200).map(
    lambda n: b'{"Year": %d, "Make": "A", "Model": "B", "Category": "C"}' % n
)
alerts = st.fixed_dictionaries(
    {"id": st.uuids().map(str) | texts, "rules": st.lists(st.fixed_dictionaries({"id": texts}))}
).map(orjson.dumps)
rules = st.builds(
    lambda name, make, categories: orjson.dumps(
        {
            "id": str(uuid.uuid4()),
            "name": name,
            "make": make,
            "categories": categories,
            "created_at": datetime.now(UTC).isoformat(),
        }
    ),
    texts,
    texts | st.none(),
    st.lists(texts, max_size=60),
)


def records(near_valid: st.SearchStrategy[bytes]) -> st.SearchStrategy[list[RawRecord]]:
    record = st.builds(
        RawRecord,
        value=st.none() | st.binary(max_size=512) | near_valid,
        key=st.none() | st.binary(max_size=40) | st.uuids().map(lambda u: str(u).encode()),
        headers=st.lists(st.tuples(header_names, st.none() | st.binary(max_size=64)), max_size=6),
        timestamp_ms=st.none() | st.integers(-(2**40), 2**50),
    )
    return st.lists(record, min_size=1, max_size=5)


codecs = st.sampled_from(sorted(CODECS))


# One named test for each way in that stopped a process before.


async def test_a_header_name_not_utf8_on_the_detections_topic_is_dead_lettered(
    system: System,
) -> None:
    topic = system.stack.settings.detections_topic
    good = orjson.dumps({"Year": 2011, "Make": "Toyota", "Model": "Hilux", "Category": "Pickup"})
    batch = [RawRecord(good), RawRecord(b"bad", headers=[(BAD_NAME, b"v")]), RawRecord(good)]
    await produce_raw(system.bootstrap, topic, batch)
    await system.detection_stored()
    letters = await read_topic(
        system.bootstrap, system.stack.settings.dead_letter_topic, expected=1
    )
    letter = next(r for r in letters if r.value == b"bad")
    headers = dict(letter.headers)
    assert headers["roadwatch.reason"] == b"header_not_utf8"
    assert headers["\\xff\\xfe"] == b"v"
    assert headers["roadwatch.source.offset"] == b"1"


async def test_a_header_name_not_utf8_on_the_alerts_topic_stops_no_feed_and_no_deliverer(
    system: System,
) -> None:
    await produce_raw(
        system.bootstrap,
        system.stack.settings.alerts_topic,
        [RawRecord(b"{}", headers=[(BAD_NAME, None)])],
    )
    await system.alert_followed()
    letters = await read_topic(
        system.bootstrap, system.stack.settings.webhooks_dead_letter_topic, expected=1
    )
    reasons = [header(r, "roadwatch.reason") for r in letters]
    assert any(reason.startswith(b"header_not_utf8") for reason in reasons), reasons


async def test_a_header_name_not_utf8_on_the_watchlists_topic_stops_no_indexer_and_no_api(
    system: System, tmp_path: Path
) -> None:
    rule = Rule(id=uuid.uuid4(), name="forged", make="Forged")
    await produce_raw(
        system.bootstrap,
        system.stack.settings.watchlists_topic,
        [RawRecord(rule_to_json(rule), key=str(rule.id).encode(), headers=[(BAD_NAME, None)])],
    )
    await system.rule_followed()
    # The API reads the topic as it starts.
    api = await asyncio.to_thread(
        start_api, system.stack.settings, port=free_port(), log=tmp_path / "api.log"
    )
    assert await asyncio.to_thread(api.stop)


async def test_a_forged_rule_with_a_nul_in_its_name_is_refused_and_alerts_go_on(
    system: System,
) -> None:
    forged = rule_to_json(Rule(id=uuid.uuid4(), name="NUL", make="Canary")).replace(
        b'"NUL"', b'"stolen\\u0000cars"'
    )
    await send_values(system.bootstrap, system.stack.settings.watchlists_topic, [forged], key=b"k")
    await system.rule_followed()
    assert not any("stolen" in r["name"] for a in system.streamed.values() for r in a["rules"])


async def test_twenty_forged_rules_with_60_kb_names_are_refused_and_the_indexer_goes_on(
    system: System,
) -> None:
    forged = [
        rule_to_json(Rule(id=uuid.uuid4(), name="N", categories=("Sedan",))).replace(
            b'"N"', b'"' + b"n" * 60_000 + b'"'
        )
        for _ in range(20)
    ]
    await send_values(system.bootstrap, system.stack.settings.watchlists_topic, forged, key=b"k")
    await system.detection_stored()
    await system.rule_followed()


# The fuzz suite: any records, on each topic.

CANARIES = {
    "detections": (detections, System.detection_stored),
    "alerts": (alerts, System.alert_followed),
    "watchlists": (rules, System.rule_followed),
}


@pytest.mark.timeout(FUZZ_SECONDS)
@pytest.mark.parametrize("topic", sorted(CANARIES))
@fuzzing
@given(data=st.data())
async def test_fuzz_any_records_on_every_topic(
    system: System, topic: str, data: st.DataObject
) -> None:
    near_valid, canary = CANARIES[topic]
    batch = data.draw(records(near_valid), label="batch")
    compression = data.draw(codecs, label="compression")
    await write(system, getattr(system.stack.settings, f"{topic}_topic"), batch, compression)
    await canary(system)


async def test_an_alert_matching_more_rules_than_it_names_is_streamed_and_delivered(
    system: System,
) -> None:
    make = "Everywhere"
    for n in range(60):
        created = await system.stack.client.post(
            "/watchlists", json={"name": f"rule {n:02}", "make": make}, headers=system.stack.admin
        )
        assert created.status_code == 201, created.text
    detection = {"Year": 2020, "Make": make, "Model": "Omni", "Category": "Van"}

    async def alerted() -> bool:
        # Again until the indexer has read the last rule.
        await send_values(
            system.bootstrap, system.stack.settings.detections_topic, [orjson.dumps(detection)]
        )
        await asyncio.sleep(0.5)
        return any(a.get("rules_matched") == 60 for a in system.streamed.values())

    await eventually(alerted, within=30, what="an alert of all 60 rules")
    alert = next(a for a in system.streamed.values() if a.get("rules_matched") == 60)
    assert [r["name"] for r in alert["rules"]] == [f"rule {n:02}" for n in range(50)]

    async def delivered() -> bool:
        return alert["id"] in system.receiver.alert_ids()

    await eventually(delivered, within=20, what="the alert delivered")
