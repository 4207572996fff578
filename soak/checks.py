"""The invariants, each checked from outside at the end of the soak: from the topics as a
reader of committed records sees them, from PostgreSQL, from the API's answers, and from
what the SSE clients and the webhook receivers got."""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from tests.helpers.receivers import Receiver

from roadwatch.detection_ids import derived_id
from roadwatch.domain import Source
from roadwatch.settings import Settings
from soak.database import Database
from soak.load import BAD_PREFIX
from soak.topics import Record, read_committed
from soak.watchers import Watcher


@dataclass(frozen=True)
class Invariant:
    name: str
    held: bool
    figure: str


@dataclass(frozen=True)
class Truth:
    """What should be, from the topics: each detection's id, and each alert's id with the
    partition and offset of its record on the alerts topic."""

    detections: set[str]
    alerting: set[str]
    alert_records: list[tuple[int, int, str]]
    alerts_on_topic: Counter[str]
    # Records that are no detection, by "partition@offset", and their dead letters.
    bad: set[str]
    dead_lettered: Counter[str]


async def truth(settings: Settings) -> Truth:
    bootstrap, topic = settings.kafka_broker_url, settings.detections_topic
    detections, alerting, bad = set(), set(), set()
    for record in await read_committed(bootstrap, topic):
        if record.value.startswith(BAD_PREFIX):
            bad.add(f"{record.partition}@{record.offset}")
            continue
        # The producer's messages carry no time: a detection's time is its record's.
        detection_id = str(
            derived_id(Source(topic, record.partition, record.offset), record.timestamp_ms)
        )
        detections.add(detection_id)
        if suspicious(orjson.loads(record.value).get("Category", ""), settings):
            alerting.add(detection_id)
    alerts = [_alert(record) for record in await read_committed(bootstrap, settings.alerts_topic)]
    letters = await read_committed(bootstrap, settings.dead_letter_topic)
    return Truth(
        detections,
        alerting,
        alerts,
        Counter(alert_id for _, _, alert_id in alerts),
        bad,
        Counter(_letter_source(letter) for letter in letters),
    )


def _letter_source(letter: Record) -> str:
    headers = letter.headers
    partition = headers.get("roadwatch.source.partition", b"?").decode()
    return f"{partition}@{headers.get('roadwatch.source.offset', b'?').decode()}"


def suspicious(category: str, settings: Settings) -> bool:
    """Whether a detection of this category raises an alert: a category may name several,
    comma-separated ("SUV, Wagon"), and case does not count."""
    named = {part.strip().casefold() for part in category.split(",")}
    return settings.suspicious_vehicle.casefold() in named


def _alert(record: Record) -> tuple[int, int, str]:
    return record.partition, record.offset, str(orjson.loads(record.value)["id"])


def once_each(name: str, expected: set[str], found: Counter[str], *, where: str) -> Invariant:
    missing = len(expected - found.keys())
    twice = sum(1 for count in found.values() if count > 1)
    unknown = len(found.keys() - expected)
    return Invariant(
        name,
        missing == twice == unknown == 0,
        f"{len(expected):,} expected, {sum(found.values()):,} {where}: {missing} missing, "
        f"{twice} more than once, {unknown} unknown",
    )


def stored_once(truth: Truth, stored: Counter[str], *, acknowledged: int) -> Invariant:
    held = once_each("", truth.detections, stored, where="stored")
    covered = acknowledged <= len(truth.detections)
    return Invariant(
        "Every detection on the topic stored exactly once",
        held.held and covered,
        f"{acknowledged:,} acknowledged to the producer; {held.figure}",
    )


async def counts_agree(api: httpx.AsyncClient, database: Database) -> list[Invariant]:
    answer = await api.get("/stats")
    answer.raise_for_status()
    stats = answer.json()
    makes = await database.makes()
    per_minute = await database.per_minute()
    differ = sum(1 for make in stats.keys() | makes.keys() if stats.get(make) != makes.get(make))
    counts = [
        Invariant(
            "/stats equal to a GROUP BY make",
            differ == 0,
            f"{len(makes)} makes, {sum(makes.values()):,} detections; {differ} differ",
        )
    ]
    if not per_minute:
        return [*counts, Invariant("/stats/timeline equal to a GROUP BY minute", False, "empty")]
    first = min(start for start, _ in per_minute)
    last = max(start for start, _ in per_minute) + timedelta(minutes=1)
    served_timeline = await api.get(
        "/stats/timeline",
        params={
            "bucket": "minute",
            "by": "category",
            "since": first.isoformat(),
            "until": last.isoformat(),
        },
    )
    served_timeline.raise_for_status()
    timeline = served_timeline.json()
    served: dict[tuple[datetime, str], int] = {}
    for bucket in timeline["buckets"]:
        start = datetime.fromisoformat(bucket["start"]).astimezone(UTC)
        served.update({(start, key): count for key, count in bucket["counts"].items() if count})
        if bucket["alerts"]:
            served[start, "alerts"] = bucket["alerts"]
    wrong = sum(
        1 for key in served.keys() | per_minute.keys() if served.get(key) != per_minute.get(key)
    )
    counts.append(
        Invariant(
            "/stats/timeline (per minute, by category, and alerts) equal to a GROUP BY",
            wrong == 0,
            f"{len(per_minute)} minute and category counts; {wrong} differ",
        )
    )
    return counts


def streams_complete(truth: Truth, watchers: list[Watcher]) -> Invariant:
    missing = twice = unknown = due = gaps = 0
    never = 0
    for watcher in watchers:
        if watcher.start is None:
            never += 1
            continue
        start = watcher.start
        expected = {a for p, o, a in truth.alert_records if o >= start.get(p, 0)}
        due += len(expected)
        missing += len(expected - watcher.seen.keys())
        twice += sum(1 for count in watcher.seen.values() if count > 1)
        unknown += len(watcher.seen.keys() - expected)
        gaps += watcher.gaps
    reconnects = sum(watcher.reconnects for watcher in watchers)
    return Invariant(
        f"Every SSE client ({len(watchers)}) saw every alert published after it connected, "
        "none twice",
        missing == twice == unknown == gaps == never == 0,
        f"{due:,} alerts due in all, after {reconnects} reconnects: {missing} missing, "
        f"{twice} twice, {unknown} not due, {gaps} gaps; {never} never connected",
    )


def receivers_complete(truth: Truth, receivers: dict[str, Receiver]) -> list[Invariant]:
    checked = []
    for name, receiver in receivers.items():
        message_ids: dict[str, set[str]] = {}
        acknowledged: set[str] = set()
        for request in receiver.requests:
            alert_id = orjson.loads(request.body)["data"]["id"]
            message_ids.setdefault(alert_id, set()).add(request.message_id)
            if 200 <= request.status < 300:
                acknowledged.add(alert_id)
        missing = len(truth.alerting - acknowledged)
        unknown = len(acknowledged - truth.alerting)
        several = sum(1 for ids in message_ids.values() if len(ids) > 1)
        retried = len(receiver.requests) - len(message_ids)
        checked.append(
            Invariant(
                f"Receiver {name} got every alert at least once, one message id across retries",
                missing == unknown == several == 0,
                f"{len(receiver.requests):,} requests ({retried:,} repeats) for "
                f"{len(acknowledged):,} alerts acknowledged: {missing} missing, {unknown} "
                f"unknown, {several} with more than one message id",
            )
        )
    return checked


def nothing_logged_as_error(logs: Iterable[Path]) -> Invariant:
    """No line a process logged at ERROR or above, nor a traceback printed outside its log's
    format: a fault is met with warnings and retries, and an error is an answer or a step
    that failed for good (an API's 500, a task that died)."""
    logs = sorted(logs)
    errors: list[str] = []
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                if line.startswith("Traceback"):
                    errors.append(f"{log.stem}: {line}")
                continue
            if isinstance(entry, dict) and entry.get("level") in {"error", "critical"}:
                errors.append(f"{log.stem}: {entry.get('logger')}: {entry.get('message')}"[:200])
    figure = f"{len(errors):,} error lines in {len(logs)} process logs"
    if errors:
        figure += "; the first: " + " | ".join(e.replace("\n", " ") for e in errors[:3])
    return Invariant("No process logged an error", not errors, figure)
