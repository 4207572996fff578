"""Documents that roadwatch did not write, in the detections and alerts of a real FerretDB:
MongoDB enforces no shape, so anyone with access, or an older version, may leave anything
there. Every page still answers, holding exactly the detections and alerts roadwatch wrote,
in order, and a walk by cursor reaches them all; an id held by such a document refuses the
detection that comes for it, with why.

The fuzz test runs ROADWATCH_FUZZ_EXAMPLES examples (12 unless set; `make fuzz` runs more).
"""

import contextlib
import itertools
import os
import string
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from bson.datetime_ms import DatetimeMS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import WriteError

from roadwatch.bootstrap.stores import detection_store
from roadwatch.domain import Alert, Detection, RuleRef
from roadwatch.rejections import Reason, RecordsRefused
from roadwatch.stores.detection_store import (
    AlertFilter,
    DetectionFilter,
    DetectionStore,
    Dimension,
    Position,
)
from roadwatch.stores.mongo_count_periods import collection_name, period_of
from roadwatch.stores.mongo_documents import alert_document, detection_document
from roadwatch.time_buckets import Bucket
from tests.helpers.factories import make_detection
from tests.helpers.servers import Servers, fresh_mongo_database_url

pytestmark = [pytest.mark.mongo]

FUZZ_EXAMPLES = int(os.environ.get("ROADWATCH_FUZZ_EXAMPLES", "12"))
Document = dict[str, Any]
FIRST_DAY = datetime(2025, 3, 1, tzinfo=UTC)
_days = itertools.count()

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    # FerretDB drops the connection for a NaN, and no PostgreSQL text holds a NUL.
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12),
    st.binary(max_size=8),
    st.datetimes(timezones=st.just(UTC)),
    st.builds(DatetimeMS, st.integers(-(2**62), 2**62)),
    st.builds(ObjectId),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(string.ascii_letters, min_size=1, max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
NOT_TEXT = VALUES.filter(lambda v: not isinstance(v, str))
NOT_INT = VALUES.filter(lambda v: type(v) is not int)


@st.composite
def broken(draw: st.DrawFn, document: Document) -> Document:
    """`document`, broken so that roadwatch cannot have written it: a field gone, of
    another type, or the whole grown past any roadwatch writes."""
    how = draw(
        st.sampled_from(["gone", "text", "int", "id", "source", "large"]),
        label="how",
    )
    document = {**document, "source": dict(document["source"])}
    if how == "gone":
        gone = sorted(set(document) - {"_id", "rules", "rule_ids"})
        del document[draw(st.sampled_from(gone))]
    elif how == "text":
        document[draw(st.sampled_from(["make", "model", "category"]))] = draw(NOT_TEXT)
    elif how == "int":
        document["year"] = draw(NOT_INT)
    elif how == "id":
        document["_id"] = draw(
            st.builds(ObjectId) | st.integers(0, 2**62) | st.just(f"not a uuid {uuid.uuid4()}")
        )
    elif how == "source":
        field = draw(st.sampled_from(["topic", "partition", "offset"]))
        document["source"][field] = draw(NOT_TEXT if field == "topic" else NOT_INT)
    else:
        document["padding"] = "x" * 70_000
    return document


@dataclass
class Place:
    store: DetectionStore
    database: AsyncDatabase[Document]

    async def emptied(self) -> "Place":
        # FerretDB reads a whole collection for every query: each example starts afresh.
        for name in ("detections", "alerts"):
            await self.database[name].delete_many({})
        return self


@pytest.fixture(scope="module")
async def place(servers: Servers) -> AsyncIterator[Place]:
    url = fresh_mongo_database_url(servers)
    store = detection_store(url)
    await store.open()
    client: AsyncMongoClient[Document] = AsyncMongoClient(url, tz_aware=True)
    try:
        yield Place(store, client.get_default_database())
    finally:
        await client.drop_database(client.get_default_database().name)
        await client.close()
        await store.close()


def newest_first(detections: list[Detection]) -> list[Detection]:
    return sorted(detections, key=lambda d: (d.timestamp, str(d.id)), reverse=True)


async def walked(
    read: Callable[[Position | None], Awaitable[list[Any]]],
    position: Callable[[Any], Position],
    limit: int,
) -> list[Any]:
    """Every item, page after page, as the API's cursors walk them."""
    items: list[Any] = []
    after = None
    while len(page := await read(after)) == limit:
        items += page
        after = position(page[-1])
    return items + page


@pytest.mark.timeout(120 + 3 * FUZZ_EXAMPLES)
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_fuzz_pages_hold_exactly_what_roadwatch_wrote(
    place: Place, data: st.DataObject
) -> None:
    # Each example has a day of its own, and reads only that day.
    await place.emptied()
    day = FIRST_DAY + timedelta(days=next(_days))
    moments = iter(data.draw(st.permutations(range(40)), label="order"))

    def at_a_moment() -> Detection:
        return make_detection(timestamp=day + timedelta(seconds=next(moments)))

    written = [at_a_moment() for _ in range(data.draw(st.integers(0, 6), label="written"))]
    alerts = [Alert(d, (RuleRef(uuid.uuid4(), "SUVs"),)) for d in written]
    await place.store.save(written)
    await place.store.save_alerts(alerts)

    def a_detection() -> Document:
        return detection_document(at_a_moment())

    def an_alert() -> Document:
        return alert_document(Alert(at_a_moment(), (RuleRef(uuid.uuid4(), "x"),)))

    for collection, document_of in (("detections", a_detection), ("alerts", an_alert)):
        for _ in range(data.draw(st.integers(1, 6), label=collection)):
            document = data.draw(broken(document_of()), label="document")
            # Values FerretDB itself refuses (nested arrays) never reach a reader.
            with contextlib.suppress(WriteError):
                await place.database[collection].insert_one(document)

    limit = data.draw(st.integers(1, 3), label="limit")
    window = DetectionFilter(since=day, until=day + timedelta(days=1))
    expected = newest_first(written)
    assert await place.store.list(window, limit=50) == expected
    assert (
        await walked(
            lambda after: place.store.list(window, limit=limit, after=after),
            lambda d: Position(d.timestamp, d.id),
            limit,
        )
        == expected
    )
    skip = data.draw(st.integers(0, 8), label="skip")
    skipped = await place.store.list(window, skip=skip, limit=limit)
    # A skip counts documents as stored, foreign ones too: what it finds is in order.
    assert skipped == [d for d in expected if d in skipped]

    history = AlertFilter(since=window.since, until=window.until)
    assert await walked(
        lambda after: place.store.alerts(history, limit=limit, after=after),
        lambda a: Position(a.detection.timestamp, a.detection.id),
        limit,
    ) == [Alert(d, a.rules) for d in expected for a in alerts if a.detection == d]


async def test_a_page_past_more_foreign_documents_than_it_reads_on_past_ends_short(
    place: Place,
) -> None:
    await place.emptied()
    day = FIRST_DAY - timedelta(days=100)
    older = make_detection(timestamp=day)
    await place.store.save([older])
    foreign = [
        {**detection_document(make_detection(timestamp=day + timedelta(seconds=1))), "year": "x"}
        for _ in range(1_002)
    ]
    await place.database["detections"].insert_many(foreign)
    window = DetectionFilter(since=day, until=day + timedelta(days=1))

    assert await place.store.list(window, limit=1) == []
    assert await place.store.list(window, skip=1_002, limit=1) == [older]


async def test_an_id_held_by_a_foreign_document_refuses_the_detection_with_why(
    place: Place,
) -> None:
    await place.emptied()
    detection = make_detection(timestamp=FIRST_DAY - timedelta(days=200))
    held = {**detection_document(detection), "source": "a camera of another system"}
    await place.database["detections"].insert_one(held)

    with pytest.raises(RecordsRefused) as refused:
        await place.store.save([detection])

    why = refused.value.culprits[0]
    assert why.reason is Reason.ID_CONFLICT
    assert "already held by a document roadwatch did not write" in why.detail


async def test_an_alert_whose_rules_were_edited_names_those_still_as_written(
    place: Place,
) -> None:
    await place.emptied()
    rule = RuleRef(uuid.uuid4(), "kept")
    alert = Alert(make_detection(timestamp=FIRST_DAY - timedelta(days=300)), (rule,))
    await place.store.save([alert.detection])
    await place.store.save_alerts([alert])
    rules = [{"id": "not an id", "name": "x"}, {"id": str(rule.id), "name": "kept"}, 7]
    await place.database["alerts"].update_one({}, {"$set": {"rules": rules}})

    assert await place.store.alerts(limit=5) == [alert]


async def test_counts_edited_or_left_by_another_hand_count_what_they_hold_as_written(
    place: Place,
) -> None:
    day = FIRST_DAY - timedelta(days=400)
    await place.store.save([make_detection(make="Kia", timestamp=day) for _ in range(3)])
    window = (day, day + timedelta(days=1))
    days = place.database[collection_name("time_counts", period_of(Bucket.DAY, day))]
    await place.database["make_counts"].insert_many(
        [
            {"_id": "edited:0", "upto": 1, "counts": "not a list"},
            {"_id": "edited:1", "upto": 1},
            {"_id": "edited:2", "upto": 1, "counts": [7, {"make": 5}, {"make": "Ford", "n": 2}]},
        ]
    )
    await days.insert_many(
        [
            {"_id": "a", "bucket": "day", "start": day, "counts": [1, 2]},
            {"_id": "b", "bucket": "day", "start": day, "counts": {"make": "Kia"}},
            {"_id": "c", "bucket": "day", "start": day, "counts": {"make": [{"k": "Kia"}]}},
            {"_id": "d", "bucket": "day", "start": day, "counts": {"make": [{"k": "VW", "n": 4}]}},
            {"_id": "e", "bucket": "day", "start": DatetimeMS(2**62), "counts": {}},
        ]
    )

    assert (await place.store.count_by_make())["Ford"] == 2
    assert await place.store.makes_between(*window) == {"VW": 4, "Kia": 3}
    timeline = await place.store.timeline(
        bucket=Bucket.DAY, since=window[0], until=window[1], by=Dimension.MAKE
    )
    assert [bucket.counts for bucket in timeline] == [{"VW": 4, "Kia": 3}]
