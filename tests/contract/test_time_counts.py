"""Counts over time and retention, on every backend: each count a store keeps equals a
group-by over the detections it holds, across bucket edges, replays and removed days."""

import random
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from roadwatch.domain import Alert, Detection, RuleRef
from roadwatch.stores.detection_store import DetectionFilter, DetectionStore, Dimension
from roadwatch.time_buckets import Bucket
from tests.helpers.factories import make_detection
from tests.helpers.stored import categories_held

MIDNIGHT = datetime(2024, 5, 3, tzinfo=UTC)
MS = timedelta(milliseconds=1)
JEEPS = RuleRef(uuid.uuid4(), "jeeps")
VANS = RuleRef(uuid.uuid4(), "vans")


async def stored(store: DetectionStore, since: datetime, until: datetime) -> list[Detection]:
    return await store.list(DetectionFilter(since=since, until=until), limit=1000)


async def group_by(
    store: DetectionStore, since: datetime, until: datetime, field: str = "make"
) -> dict[str, int]:
    return dict(Counter(getattr(d, field) for d in await stored(store, since, until)))


def edge_detections() -> list[Detection]:
    """Detections on each side of minute, hour and day edges."""
    moments = [
        MIDNIGHT - timedelta(hours=1) - MS,
        MIDNIGHT - timedelta(hours=1),
        MIDNIGHT - timedelta(minutes=1) - MS,
        MIDNIGHT - timedelta(minutes=1),
        MIDNIGHT - MS,
        MIDNIGHT,
        MIDNIGHT + timedelta(seconds=59, milliseconds=999),
        MIDNIGHT + timedelta(minutes=1),
        MIDNIGHT + timedelta(minutes=59, seconds=59),
        MIDNIGHT + timedelta(hours=1),
    ]
    makes = ["Jeep", "Ford", "Kia"]
    categories = ["SUV", "Van", "Sedan", "SUV, Pickup"]
    return [
        make_detection(timestamp=moment, make=makes[i % 3], category=categories[i % 4])
        for i, moment in enumerate(moments)
        for _copy in range(i % 2 + 1)
    ]


async def test_timelines_equal_a_group_by_on_both_sides_of_every_edge(
    store: DetectionStore,
) -> None:
    batch = edge_detections()
    await store.save(batch)
    await store.save(batch[3:8])  # a replay counts nothing twice

    since, until = MIDNIGHT - timedelta(days=1), MIDNIGHT + timedelta(days=1)
    everything = await stored(store, since, until)
    for bucket in Bucket:
        for by in Dimension:
            timeline = await store.timeline(bucket=bucket, since=since, until=until, by=by)
            assert [b.start for b in timeline] == list(bucket.starts(since, until))
            for entry in timeline:
                end = entry.start + bucket.length
                inside = [d for d in everything if entry.start <= d.timestamp < end]
                assert entry.counts == dict(Counter(getattr(d, by.value) for d in inside))
            assert sum(sum(b.counts.values()) for b in timeline) == len(batch)


async def test_a_replay_reaching_past_what_was_counted_adds_only_the_rest(
    store: DetectionStore,
) -> None:
    batch = edge_detections()
    await store.save(batch[:6])
    await store.save(batch[3:])  # half replayed, half new, in the same buckets

    since, until = MIDNIGHT - timedelta(days=1), MIDNIGHT + timedelta(days=1)
    for bucket in Bucket:
        timeline = await store.timeline(bucket=bucket, since=since, until=until, by=Dimension.MAKE)
        for entry in timeline:
            end = entry.start + bucket.length
            inside = [d for d in batch if entry.start <= d.timestamp < end]
            assert entry.counts == dict(Counter(d.make for d in inside))


async def test_counts_per_make_and_category_in_any_window_of_whole_minutes_equal_a_group_by(
    store: DetectionStore,
) -> None:
    rng = random.Random(16)
    start = MIDNIGHT - timedelta(days=1, hours=3)
    span = timedelta(days=2, hours=6)
    batch = [
        make_detection(
            timestamp=start + span * rng.random(),
            make=rng.choice(["Jeep", "Ford", "Kia", "BMW"]),
            category=rng.choice(["SUV", "Van", "Sedan"]),
        )
        for _ in range(400)
    ]
    await store.save(batch)

    for _ in range(25):
        first = start + timedelta(minutes=rng.randrange(int(span / timedelta(minutes=1))))
        last = first + timedelta(minutes=rng.choice([1, 59, 61, 1439, 1441, 2000]))
        counted = await store.makes_between(first, last)
        assert counted == await group_by(store, first, last), (first, last)
        by_category = await store.counts_between(Dimension.CATEGORY, first, last)
        assert by_category == await group_by(store, first, last, "category"), (first, last)
    whole = (start - timedelta(days=1), start + span * 2)
    everything = await store.makes_between(*whole)
    assert everything == await store.count_by_make() == await store.group_by_make()
    every_category = await store.counts_between(Dimension.CATEGORY, *whole)
    assert every_category == await store.count_by_category() == await categories_held(store)


async def test_a_window_in_another_offset_counts_the_same_moments(store: DetectionStore) -> None:
    await store.save(edge_detections())
    kathmandu = timezone(timedelta(hours=5, minutes=45))
    since = MIDNIGHT - timedelta(hours=1)
    until = MIDNIGHT + timedelta(minutes=1)

    local = await store.makes_between(since.astimezone(kathmandu), until.astimezone(kathmandu))

    assert local == await store.makes_between(since, until) == await group_by(store, since, until)
    local_timeline = await store.timeline(
        bucket=Bucket.HOUR,
        since=since.astimezone(kathmandu),
        until=until.astimezone(kathmandu),
        by=Dimension.MAKE,
    )
    utc_timeline = await store.timeline(
        bucket=Bucket.HOUR, since=since, until=until, by=Dimension.MAKE
    )
    assert local_timeline == utc_timeline


async def test_alerts_are_counted_per_bucket_once_each(store: DetectionStore) -> None:
    alerts = [
        Alert(make_detection(timestamp=MIDNIGHT - MS), (JEEPS,)),
        Alert(make_detection(timestamp=MIDNIGHT), (JEEPS, VANS)),
        Alert(make_detection(timestamp=MIDNIGHT + timedelta(minutes=5)), (VANS,)),
    ]
    await store.save([a.detection for a in alerts])
    await store.save_alerts(alerts)
    await store.save_alerts(alerts[1:])  # a replay

    by_hour = await store.timeline(
        bucket=Bucket.HOUR,
        since=MIDNIGHT - timedelta(hours=1),
        until=MIDNIGHT + timedelta(hours=1),
        by=Dimension.CATEGORY,
    )

    assert [b.alerts for b in by_hour] == [1, 2]
    assert [sum(b.counts.values()) for b in by_hour] == [1, 2]


async def test_dropped_days_are_gone_and_every_count_still_equals_a_group_by(
    store: DetectionStore,
) -> None:
    days = [MIDNIGHT + timedelta(days=n) for n in range(4)]
    batch = [
        make_detection(timestamp=day + timedelta(hours=h), make=make, category=f"{make}s")
        for day in days
        for h, make in enumerate(["Jeep", "Ford", "Jeep", "Kia"][: days.index(day) + 1])
    ]
    await store.save(batch)
    await store.save_alerts([Alert(d, (JEEPS,)) for d in batch if d.make == "Jeep"])
    await store.prepare_days([days[3].date() + timedelta(days=1)])

    removed = await store.drop_days_before(days[2].date())

    assert removed == [days[0].date(), days[1].date()]
    kept = [d for d in batch if d.timestamp >= days[2]]
    assert {d.id for d in await store.list(limit=100)} == {d.id for d in kept}
    assert await store.count_by_make() == await store.group_by_make()
    assert await store.count_by_make() == dict(Counter(d.make for d in kept).most_common())
    assert await store.count_by_category() == dict(Counter(d.category for d in kept))
    assert await store.makes_between(days[0], days[3] + timedelta(days=1)) == (
        await store.group_by_make()
    )
    timeline = await store.timeline(
        bucket=Bucket.DAY, since=days[0], until=days[3] + timedelta(days=1), by=Dimension.MAKE
    )
    assert [sum(b.counts.values()) for b in timeline] == [0, 0, 3, 4]
    assert [b.alerts for b in timeline] == [0, 0, 2, 2]
    assert {a.detection.timestamp >= days[2] for a in await store.alerts(limit=100)} == {True}

    # Again: nothing more goes, and what was counted stays exact.
    assert await store.drop_days_before(days[2].date()) == []
    # Nothing of a removed detection is left: not even its id is held.
    reused = make_detection(id=batch[0].id, timestamp=batch[0].timestamp, make="Jeep")
    assert await store.save([reused]) == 1
    assert await store.drop_days_before(days[2].date()) == [days[0].date()]
    await store.save([make_detection(timestamp=days[3], make="Kia")])
    assert await store.count_by_make() == await store.group_by_make()
    assert await store.count_by_category() == await categories_held(store)


@pytest.mark.slow
async def test_one_batch_spread_over_years_is_stored_and_counted(store: DetectionStore) -> None:
    # Every time since 2000 is a valid detection time: a batch may need hundreds of new days
    # at once (more than one transaction of PostgreSQL may lock).
    batch = [
        make_detection(timestamp=MIDNIGHT - timedelta(days=5 * n), make=("Jeep", "Kia")[n % 2])
        for n in range(1500)
    ]

    assert await store.save(batch) == len(batch)

    assert await store.count() == len(batch)
    assert await store.count_by_make() == await store.group_by_make() == {"Jeep": 750, "Kia": 750}
    assert await store.count_by_category() == {"SUV": 1500}
    since, until = MIDNIGHT - timedelta(days=5 * 1500), MIDNIGHT + timedelta(days=1)
    assert await store.makes_between(since, until) == await store.group_by_make()


async def test_retention_on_an_empty_store_removes_nothing(store: DetectionStore) -> None:
    assert await store.drop_days_before(date(2024, 1, 1)) == []
    assert await store.count_by_make() == {}
