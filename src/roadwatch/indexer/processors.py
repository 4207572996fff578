"""The steps a batch of detections goes through; each returns what the next one should see.

The chain is wired in bootstrap/indexer.py: each step takes what the one before it passes on.
"""

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any, Protocol

from roadwatch.alerts import AlertPublisher
from roadwatch.domain import Alert, Detection, FromRecord
from roadwatch.indexer.metrics import IndexerMetrics
from roadwatch.rejections import Reason, RecordsRefused, RejectedMessage
from roadwatch.stores.detection_store import DetectionStore
from roadwatch.watchlists.matching import RuleIndex

log = logging.getLogger(__name__)

# Read without a Python call a detection: the windows look at every one of a batch.
_detected_at = attrgetter("timestamp")


class Processor(Protocol):
    # How many batches the step may work on at once (they still leave it in order).
    batches_at_once: int

    async def __call__(self, batch: Sequence[Any]) -> Sequence[FromRecord]: ...


class RefuseOlderThan:
    """Refuse the detections older than a window, with the reason the window gives: the
    retention window (stored, they would be removed at the next upkeep, and a replay of old
    records would bring back days already removed), or the window the store accepts."""

    batches_at_once = 1

    def __init__(
        self, window: timedelta, *, reason: Reason, what: str, clock: Callable[[], datetime]
    ) -> None:
        self._window = window
        self._reason = reason
        self._what = what
        self._clock = clock

    async def __call__(self, batch: Sequence[Detection]) -> Sequence[Detection]:
        oldest = self._clock() - self._window
        if not batch or min(map(_detected_at, batch)) >= oldest:
            return batch
        return _refused_where(
            batch,
            lambda d: d.timestamp < oldest,
            self._reason,
            lambda d: (
                f"detected at {d.timestamp.isoformat()}, before the {self._what}, "
                f"which starts at {oldest.isoformat(timespec='seconds')}"
            ),
            f"older than the {self._what}",
        )


class RefuseAheadOf:
    """Refuse the detections further ahead of this clock than a margin: a camera whose clock
    runs days fast would otherwise fill days that nobody reads yet, and make their tables."""

    batches_at_once = 1

    def __init__(self, margin: timedelta, *, clock: Callable[[], datetime]) -> None:
        self._margin = margin
        self._clock = clock

    async def __call__(self, batch: Sequence[Detection]) -> Sequence[Detection]:
        latest = self._clock() + self._margin
        if not batch or max(map(_detected_at, batch)) <= latest:
            return batch
        return _refused_where(
            batch,
            lambda d: d.timestamp > latest,
            Reason.TOO_NEW,
            lambda d: (
                f"detected at {d.timestamp.isoformat()}, after "
                f"{latest.isoformat(timespec='seconds')}: further ahead of this clock than the "
                "store accepts"
            ),
            "ahead of the window of times the store accepts",
        )


def _refused_where(
    batch: Sequence[Detection],
    outside: Callable[[Detection], bool],
    reason: Reason,
    detail: Callable[[Detection], str],
    summary: str,
) -> Sequence[Detection]:
    culprits = {
        index: RejectedMessage(reason, detail(detection))
        for index, detection in enumerate(batch)
        if outside(detection)
    }
    if culprits:
        raise RecordsRefused(
            f"{len(culprits)} detection(s) {summary}", reason=reason, culprits=culprits
        )
    return batch


class Persist:
    """Store the batch; pass all of it on, so a replayed detection still raises its alert."""

    def __init__(self, store: DetectionStore, *, metrics: IndexerMetrics) -> None:
        self._store = store
        self._metrics = metrics
        self.batches_at_once = store.saves_at_once

    async def __call__(self, batch: Sequence[Detection]) -> Sequence[Detection]:
        with self._metrics.store_write_seconds.time():
            stored = await self._store.save(batch)
        self._metrics.stored.inc(stored)
        return batch


class MatchWatchlists:
    """Pass on, as alerts, the detections that match an enabled rule.

    A batch is judged by the rules in force when it reaches this step: `rules` is asked once
    per batch, and a change arriving meanwhile applies from the next batch.
    """

    batches_at_once = 1

    def __init__(self, rules: Callable[[], RuleIndex]) -> None:
        self._rules = rules

    async def __call__(self, batch: Sequence[Detection]) -> Sequence[Alert]:
        matches = self._rules().matches
        alerts = []
        for detection in batch:
            matched = matches(detection)
            if matched:
                alerts.append(Alert.of(detection, matched))
        return alerts


class RecordAlerts:
    """Keep each alert in the store's history before it is published, so the history holds
    every alert published (a replay finds it kept, and keeps it as it was)."""

    batches_at_once = 1

    def __init__(self, store: DetectionStore) -> None:
        self._store = store

    async def __call__(self, batch: Sequence[Alert]) -> Sequence[Alert]:
        await self._store.save_alerts(batch)
        return batch


class PublishAlerts:
    """Publish each alert that reaches this step."""

    batches_at_once = 1

    def __init__(self, publisher: AlertPublisher, *, metrics: IndexerMetrics) -> None:
        self._publisher = publisher
        self._metrics = metrics

    async def __call__(self, batch: Sequence[Alert]) -> Sequence[Alert]:
        if batch:
            await self._publisher.publish(batch)
            self._metrics.alerts.inc(len(batch))
        return batch
