"""One contract, every backend: what the indexer and the API rely on from a detection store."""

import json
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import msgspec
import orjson
import pytest

from roadwatch.domain import Alert, Detection, RuleRef, Source
from roadwatch.parsing import parse_detection
from roadwatch.rejections import Reason, RecordsRefused, RejectedMessage
from roadwatch.stores.detection_store import AlertFilter, DetectionFilter, DetectionStore, Position
from roadwatch.stores.postgres_alert_saves import COPIED_FROM
from tests.helpers.factories import EPOCH, make_detection
from tests.helpers.stored import categories_held

MAKES = ["Toyota", "Ford", "Chevrolet", "Mercedes-Benz", "smart", "Ford"]


async def test_a_saved_detection_reads_back_with_every_field(store: DetectionStore) -> None:
    original = make_detection(make="Mercedes-Benz", model="G 550", category="SUV", year=2019)

    assert await store.save([original]) == 1

    assert await store.list() == [original]


async def test_saving_the_same_detections_again_stores_nothing_twice(
    store: DetectionStore,
) -> None:
    batch = [make_detection(make=make) for make in MAKES]
    assert await store.save(batch) == len(batch)

    assert await store.save(batch) == 0
    assert await store.save([*batch[2:], make_detection(make="Kia")]) == 1

    assert await store.count() == len(batch) + 1
    assert await store.count_by_make() == await store.group_by_make()
    assert await store.count_by_category() == await categories_held(store)


async def test_counts_per_make_and_category_equal_a_group_by_through_replays_and_duplicates(
    store: DetectionStore,
) -> None:
    categories = ["SUV", "Van", "Sedan"]
    first = [make_detection(make=m, category=categories[i % 3]) for i, m in enumerate(MAKES * 5)]
    second = [make_detection(make=make) for make in reversed(MAKES * 3)]

    await store.save(first[:10])
    await store.save(first)  # a replay overlapping what was stored
    await store.save(second)
    await store.save(second[:4])

    expected = Counter(d.make for d in first + second)
    assert await store.group_by_make() == dict(expected.most_common())
    assert await store.count_by_make() == await store.group_by_make()
    assert list((await store.count_by_make()).values()) == sorted(expected.values(), reverse=True)
    by_category = Counter(d.category for d in first + second)
    assert await store.count_by_category() == await categories_held(store) == by_category
    assert list((await store.count_by_category()).values()) == [
        n for _category, n in by_category.most_common()
    ]


async def test_listing_is_newest_first_with_ties_broken_by_id(store: DetectionStore) -> None:
    same_time = [make_detection(timestamp=EPOCH) for _ in range(5)]
    older = make_detection(timestamp=EPOCH - timedelta(seconds=1))
    newer = make_detection(timestamp=EPOCH + timedelta(seconds=1))
    await store.save([older, *same_time, newer])

    listed = await store.list(limit=10)

    ties = sorted(same_time, key=lambda d: d.id, reverse=True)
    assert listed == [newer, *ties, older]
    assert await store.list(skip=2, limit=3) == [*ties[1:4]]


async def test_keyset_pages_cover_everything_once(store: DetectionStore) -> None:
    saved = [make_detection(timestamp=EPOCH + timedelta(seconds=i // 3)) for i in range(40)]
    await store.save(saved)

    seen: list[Detection] = []
    after: Position | None = None
    while page := await store.list(limit=7, after=after):
        seen += page
        after = Position(page[-1].timestamp, page[-1].id)

    assert seen == await store.list(limit=100)
    assert sorted(d.id for d in seen) == sorted(d.id for d in saved)


async def test_filters_select_exactly_the_matching_detections(store: DetectionStore) -> None:
    suv = make_detection(make="Jeep", model="Wrangler", category="SUV", year=2015)
    sedan = make_detection(make="Honda", model="Accord", category="Sedan", year=2015)
    late = make_detection(
        make="Jeep",
        model="Cherokee",
        category="SUV",
        year=2020,
        timestamp=EPOCH + timedelta(days=1),
    )
    await store.save([suv, sedan, late])

    async def ids(where: DetectionFilter) -> set[uuid.UUID]:
        found = await store.list(where, limit=10)
        assert await store.count(where) == len(found)
        return {d.id for d in found}

    assert await ids(DetectionFilter(make="Jeep")) == {suv.id, late.id}
    assert await ids(DetectionFilter(model="Accord")) == {sedan.id}
    assert await ids(DetectionFilter(category="SUV", year=2015)) == {suv.id}
    assert await ids(DetectionFilter(since=EPOCH + timedelta(hours=1))) == {late.id}
    assert await ids(DetectionFilter(until=EPOCH + timedelta(hours=1))) == {suv.id, sedan.id}


async def test_an_operator_shaped_filter_value_is_a_plain_string(store: DetectionStore) -> None:
    await store.save([make_detection(make="Jeep")])

    assert await store.count(DetectionFilter(make='{"$ne": null}')) == 0
    assert await store.list(DetectionFilter(model="$where")) == []


async def test_an_empty_batch_is_a_no_op(store: DetectionStore) -> None:
    assert await store.save([]) == 0
    assert await store.count() == 0
    assert await store.count_by_make() == {}


def from_another_record(detection: Detection, **changes: object) -> Detection:
    """The same id, carried by another record (and perhaps with other values)."""
    source = msgspec.structs.replace(detection.source, offset=detection.source.offset + 10**9)
    return msgspec.structs.replace(detection, source=source, **changes)


async def test_an_id_held_by_another_record_is_refused_naming_both_and_never_replaced(
    store: DetectionStore,
) -> None:
    held = make_detection(make="Toyota")
    forged = from_another_record(held, make="Forged", category="Forged")
    bystander = make_detection(make="Kia", category="Van")
    await store.save([held])

    with pytest.raises(RecordsRefused) as refused:
        await store.save([bystander, forged])
    await store.save([bystander])

    assert list(refused.value.culprits) == [1]
    why = refused.value.culprits[1]
    assert why.reason == Reason.ID_CONFLICT
    assert str(held.id) in why.detail
    assert f"@{held.source.offset}" in why.detail
    assert f"@{forged.source.offset}" in why.detail
    assert await store.list(DetectionFilter(make="Toyota")) == [held]
    assert await store.count(DetectionFilter(make="Forged")) == 0
    assert await store.count_by_make() == await store.group_by_make() == {"Kia": 1, "Toyota": 1}
    assert await store.count_by_category() == {"SUV": 1, "Van": 1}


async def test_an_id_is_held_once_whatever_the_time_of_the_detection_that_reuses_it(
    store: DetectionStore,
) -> None:
    held = make_detection(make="Toyota", timestamp=EPOCH)
    await store.save([held])
    later = from_another_record(held, make="Forged", timestamp=EPOCH + timedelta(days=3))
    earlier = from_another_record(held, make="Forged", timestamp=EPOCH - timedelta(days=3))

    for forged in (later, earlier):
        with pytest.raises(RecordsRefused) as refused:
            await store.save([forged])
        assert refused.value.culprits[0].reason == Reason.ID_CONFLICT

    assert await store.count() == 1
    assert await store.count_by_make() == {"Toyota": 1}


async def test_two_records_with_one_id_in_a_batch_store_one_and_refuse_the_other(
    store: DetectionStore,
) -> None:
    first = make_detection(make="Toyota")
    other = from_another_record(first, make="Ford", category="Van")
    batch = [first, *(make_detection() for _ in range(5)), other]

    with pytest.raises(RecordsRefused) as refused:
        await store.save(batch)
    (culprit,) = refused.value.culprits
    rest = [d for i, d in enumerate(batch) if i != culprit]
    await store.save(rest)

    assert refused.value.culprits[culprit].reason == Reason.ID_CONFLICT
    assert await store.count() == 6
    assert {d.source for d in await store.list()} == {d.source for d in rest}
    assert await store.count_by_make() == await store.group_by_make()
    assert await store.count_by_category() == await categories_held(store)


@pytest.mark.parametrize("make", ["Ford\x00", "Ford\ud800"])
async def test_a_value_the_database_cannot_hold_is_refused_not_failed(
    store: DetectionStore, make: str
) -> None:
    batch = [make_detection(), make_detection(make=make), make_detection()]

    with pytest.raises(RecordsRefused) as refused:
        await store.save(batch)
    # Saved again without the culprit, the rest goes in exactly once.
    await store.save([batch[0], batch[2]])

    assert refused.value.reason == Reason.STORE_REFUSED
    assert refused.value.detail
    assert await store.count() == 2
    assert await store.count_by_make() == await store.group_by_make()


async def test_a_capped_count_stops_just_past_the_cap(store: DetectionStore) -> None:
    await store.save([make_detection(category="SUV") for _ in range(30)])

    assert await store.count(DetectionFilter(category="SUV"), cap=10) == 11
    assert await store.count(DetectionFilter(category="SUV"), cap=30) == 30
    assert await store.count(DetectionFilter(category="SUV")) == 30


def mutated_messages(count: int, seed: int = 7) -> list[bytes]:
    """The producer's message with bytes replaced, inserted or cut, and fields swapped for
    awkward values: what a careless or hostile camera might send."""
    rng = random.Random(seed)
    base = {"Year": 2011, "Make": "Toyota", "Model": "Land Cruiser", "Category": "SUV"}
    awkward = [
        "ＳＵＶ",
        "S\u200bUV",
        "Citroe\u0308n",
        "\u202etxet",
        "x" * 128,
        "ß",
        "İ",
        "\ufeff",
        "😀 car",
        "a\u0000b",
        "\ud800",
        2011,
        -1,
        10**30,
        None,
        [],
        {},
        True,
        "2011",
    ]
    messages = []
    for _ in range(count):
        message = dict(base)
        for field in rng.sample([*base, "timestamp", "id"], rng.randint(0, 3)):
            message[field] = rng.choice(awkward)
        try:
            raw = bytearray(orjson.dumps(message))
        except TypeError:  # a lone surrogate: write it as JSON's escape instead
            raw = bytearray(json.dumps(message).encode())
        for _ in range(rng.randint(0, 2)):
            where = rng.randrange(len(raw))
            raw[where] = rng.randrange(256)
        messages.append(bytes(raw))
    return messages


async def test_every_detection_the_parser_returns_is_one_the_store_takes(
    store: DetectionStore,
) -> None:
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    parsed = []
    for offset, raw in enumerate(mutated_messages(1500)):
        try:
            parsed.append(
                parse_detection(raw, source=Source("mutated", 0, offset), timestamp_ms=now_ms)
            )
        except RejectedMessage:
            continue
    assert len(parsed) > 100  # enough of them get through to mean something

    await store.save(parsed)

    assert await store.count() == len(parsed)
    assert await store.count_by_make() == await store.group_by_make()


JEEPS = RuleRef(uuid.uuid4(), "jeeps")
OLD = RuleRef(uuid.uuid4(), "old cars")


def _alerts(count: int, rules: tuple[RuleRef, ...], *, start: int = 0) -> list[Alert]:
    """Alerts on detections a second apart, from EPOCH + `start` s, ties by the same second."""
    return [
        Alert(make_detection(timestamp=EPOCH + timedelta(seconds=start + i // 2)), rules)
        for i in range(count)
    ]


async def test_alerts_are_kept_once_and_read_back_newest_first(store: DetectionStore) -> None:
    kept = _alerts(9, (JEEPS, OLD))
    assert await store.save_alerts(kept) == 9
    # A replay keeps each alert as it was, whatever the rules say now.
    assert await store.save_alerts([Alert(a.detection, (OLD,)) for a in kept[:4]]) == 0
    assert await store.save_alerts([]) == 0

    history = await store.alerts(limit=100)

    expected = sorted(kept, key=lambda a: (a.detection.timestamp, a.detection.id), reverse=True)
    assert history == expected
    assert await store.alerts(AlertFilter(rule=OLD.id), limit=100) == expected


async def test_a_batch_of_alerts_as_large_as_the_indexers_is_kept_once_too(
    store: DetectionStore,
) -> None:
    # Large enough that the PostgreSQL store copies it rather than passing it as parameters.
    large = COPIED_FROM + 50
    kept = _alerts(large, (JEEPS,))
    assert await store.save_alerts(kept) == large
    # A replay of half of them, with as many new ones, some matching two rules.
    new = _alerts(large // 2, (JEEPS, OLD), start=large)
    assert await store.save_alerts(kept[large // 2 :] + new) == len(new)

    history = await store.alerts(limit=1000)
    assert len(history) == large + len(new)
    assert {a.detection.id for a in history} == {a.detection.id for a in kept + new}
    assert len(await store.alerts(AlertFilter(rule=JEEPS.id), limit=1000)) == len(history)
    assert len(await store.alerts(AlertFilter(rule=OLD.id), limit=1000)) == len(new)


async def test_alert_history_pages_by_rule_and_time_cover_everything_once(
    store: DetectionStore,
) -> None:
    jeeps = _alerts(15, (JEEPS,))
    both = _alerts(10, (JEEPS, OLD), start=100)
    await store.save_alerts(jeeps + both)

    async def every_page(where: AlertFilter) -> list[Alert]:
        seen: list[Alert] = []
        after: Position | None = None
        while page := await store.alerts(where, limit=4, after=after):
            seen += page
            after = Position(page[-1].detection.timestamp, page[-1].detection.id)
        return seen

    assert {a.detection.id for a in await every_page(AlertFilter())} == {
        a.detection.id for a in jeeps + both
    }
    assert len(await every_page(AlertFilter())) == 25
    assert {a.detection.id for a in await every_page(AlertFilter(rule=OLD.id))} == {
        a.detection.id for a in both
    }
    assert len(await every_page(AlertFilter(rule=JEEPS.id))) == 25
    assert await every_page(AlertFilter(rule=uuid.uuid4())) == []

    window = AlertFilter(since=EPOCH + timedelta(seconds=2), until=EPOCH + timedelta(seconds=5))
    assert {a.detection.timestamp for a in await every_page(window)} == {
        EPOCH + timedelta(seconds=s) for s in (2, 3, 4)
    }
    by_rule = AlertFilter(rule=OLD.id, since=EPOCH + timedelta(seconds=104))
    assert len(await every_page(by_rule)) == 2
