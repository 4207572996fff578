"""/stats over a window and /stats/timeline through HTTP, for each store."""

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import pytest

from roadwatch.domain import Alert, Detection, RuleRef
from roadwatch.stores.detection_store import DetectionFilter
from tests.helpers.api_stack import Stack
from tests.helpers.factories import make_detection

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

DAY = datetime(2023, 3, 14, tzinfo=UTC)
INDIA = timezone(timedelta(hours=5, minutes=30))
RULE = RuleRef(uuid.uuid4(), "jeeps")


def z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def spread_over(stack: Stack, day: datetime) -> list[Detection]:
    """Detections every 7 minutes 13 seconds through the day, Jeeps alerted."""
    makes = ["Jeep", "Ford", "Kia", "Ford"]
    categories = ["SUV", "Sedan", "Van"]
    batch = [
        make_detection(
            timestamp=day + timedelta(seconds=433 * i),
            make=makes[i % 4],
            category=categories[i % 3],
        )
        for i in range(int(timedelta(days=1) / timedelta(seconds=433)) + 1)
    ]
    await stack.store.save(batch)
    await stack.store.save_alerts([Alert(d, (RULE,)) for d in batch if d.make == "Jeep"])
    return batch


async def test_stats_over_a_window_equal_a_group_by_whatever_the_offset(stack: Stack) -> None:
    batch = await spread_over(stack, DAY)
    since, until = DAY + timedelta(hours=3, minutes=17), DAY + timedelta(hours=20, minutes=1)
    inside = await stack.store.list(DetectionFilter(since=since, until=until), limit=1000)
    expected = dict(Counter(d.make for d in inside).most_common())
    assert sum(expected.values()) == sum(1 for d in batch if since <= d.timestamp < until)

    for offset in (UTC, INDIA):
        answer = await stack.client.get(
            "/stats",
            params={"since": since.astimezone(offset).isoformat(), "until": z(until)},
            headers=stack.admin_headers,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json() == expected
        assert list(answer.json().values()) == sorted(expected.values(), reverse=True)

    # An open end reaches every stored detection on that side.
    open_until = await stack.client.get(
        "/stats", params={"since": z(since)}, headers=stack.admin_headers
    )
    everything_since = await stack.store.list(DetectionFilter(since=since), limit=10_000)
    assert open_until.json() == dict(Counter(d.make for d in everything_since).most_common())

    # And per category: of the window, and of everything stored.
    for params in ({"since": z(since), "until": z(until)}, {}):
        answer = await stack.client.get(
            "/stats", params={**params, "by": "category"}, headers=stack.admin_headers
        )
        held = inside if params else await stack.store.list(limit=10_000)
        assert answer.json() == dict(Counter(d.category for d in held).most_common())
        assert list(answer.json().values()) == sorted(answer.json().values(), reverse=True)


async def test_a_timeline_by_hour_holds_every_hour_of_the_day(stack: Stack) -> None:
    day = DAY + timedelta(days=3)
    batch = await spread_over(stack, day)

    answer = await stack.client.get(
        "/stats/timeline",
        params={
            "bucket": "hour",
            "by": "category",
            "since": z(day),
            "until": z(day + timedelta(days=1)),
        },
        headers=stack.admin_headers,
    )

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["bucket"], body["by"], body["since"]) == ("hour", "category", z(day))
    assert [b["start"] for b in body["buckets"]] == [z(day + timedelta(hours=h)) for h in range(24)]
    for entry in body["buckets"]:
        start = datetime.fromisoformat(entry["start"])
        inside = [d for d in batch if start <= d.timestamp < start + timedelta(hours=1)]
        assert entry["counts"] == dict(Counter(d.category for d in inside).most_common())
        assert list(entry["counts"].values()) == sorted(entry["counts"].values(), reverse=True)
        assert entry["detections"] == len(inside)
        assert entry["alerts"] == sum(1 for d in inside if d.make == "Jeep")


async def test_an_empty_window_is_a_series_of_zeros(stack: Stack) -> None:
    empty = DAY - timedelta(days=30)

    answer = await stack.client.get(
        "/stats/timeline",
        params={"bucket": "minute", "since": z(empty), "until": z(empty + timedelta(minutes=5))},
        headers=stack.admin_headers,
    )

    assert answer.status_code == 200
    assert [(b["detections"], b["alerts"], b["counts"]) for b in answer.json()["buckets"]] == [
        (0, 0, {})
    ] * 5


@pytest.mark.parametrize(
    ("path", "params", "says"),
    [
        ("/stats", {"since": "2023-03-14T10:00:30Z"}, "whole minute"),
        ("/stats", {"until": "2023-03-14T10:00:00.001Z"}, "whole minute"),
        ("/stats", {"since": "2023-03-14T10:00Z", "until": "2023-03-14T10:00Z"}, "before until"),
        ("/stats", {"since": "yesterday"}, "ISO 8601"),
        ("/stats", {"since": "0001-01-01T00:00:00+01:00"}, "outside the years"),
        ("/stats/timeline", {"bucket": "week"}, "minute"),
        ("/stats/timeline", {"by": "model"}, "make"),
        (
            "/stats/timeline",
            {"bucket": "minute", "since": "2023-03-14T00:00Z", "until": "2023-03-16T00:00Z"},
            "larger bucket",
        ),
        ("/stats/timeline", {"since": "2024-01-02T00:00Z", "until": "2024-01-01T00:00Z"}, "before"),
    ],
)
async def test_a_bad_window_is_a_clear_422(
    stack: Stack, path: str, params: dict[str, str], says: str
) -> None:
    answer = await stack.client.get(path, params=params, headers=stack.admin_headers)

    assert answer.status_code == 422, answer.text
    assert says in answer.text


@pytest.mark.parametrize(
    "params",
    [
        {"since": "9999-12-31T23:59:00Z"},
        {"until": "9999-12-31T23:59:00Z"},
        {"since": "0001-01-01T00:00:00Z", "until": "0001-01-02T00:00:00Z"},
        {"since": "1999-01-01T00:00:00-12:00"},
        {"until": "2000-01-01T00:00:00+14:00"},
    ],
)
async def test_windows_at_the_ends_of_time_are_answered_not_failed(
    stack: Stack, params: dict[str, str]
) -> None:
    for path in ("/stats", "/stats/timeline"):
        extra = {"bucket": "day"} if path.endswith("timeline") else {}
        answer = await stack.client.get(
            path, params={**params, **extra}, headers=stack.admin_headers
        )
        assert answer.status_code in (200, 422), answer.text


async def test_counts_over_time_need_a_token(stack: Stack) -> None:
    for path in ("/stats?since=2023-03-14T00:00Z", "/stats/timeline"):
        assert (await stack.client.get(path)).status_code == 401


async def test_a_page_of_a_window_counts_its_total_exactly(stack: Stack) -> None:
    day = DAY + timedelta(days=6)
    batch = await spread_over(stack, day)

    for since, until in [
        (day + timedelta(hours=2), day + timedelta(hours=5, minutes=7)),  # from the counts
        (day + timedelta(hours=2, seconds=1), day + timedelta(hours=5)),  # counted
    ]:
        inside = [d for d in batch if since <= d.timestamp < until]
        for field, value in ((None, None), ("make", "Ford"), ("category", "SUV")):
            params: dict[str, str | int] = {"since": z(since), "until": z(until), "limit": 1000}
            if field and value:
                params[field] = value
            page = await stack.client.get("/detections", params=params, headers=stack.admin_headers)
            assert page.status_code == 200
            expected = [d for d in inside if field is None or getattr(d, field) == value]
            assert page.json()["total"] == len(page.json()["items"]) == len(expected)
            assert page.json()["total_capped"] is False
