"""The steps a batch of detections goes through; each returns what the next one should see."""

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from roadwatch.alerts import AlertPublisher
from roadwatch.domain import Detection
from roadwatch.indexer.metrics import IndexerMetrics
from roadwatch.stores.base import DetectionStore

log = logging.getLogger(__name__)

Batch = Sequence[Detection]


class Processor(Protocol):
    # How many batches the step may work on at once (they still leave it in order).
    batches_at_once: int

    async def __call__(self, batch: Batch) -> Batch: ...


class Persist:
    """Store the batch; pass all of it on, so a replayed detection still raises its alert."""

    def __init__(self, store: DetectionStore, *, metrics: IndexerMetrics) -> None:
        self._store = store
        self._metrics = metrics
        self.batches_at_once = store.saves_at_once

    async def __call__(self, batch: Batch) -> Batch:
        with self._metrics.store_write_seconds.time():
            stored = await self._store.save(batch)
        self._metrics.stored.inc(stored)
        return batch


class DetectSuspicious:
    """Keep only the detections the rule finds suspicious."""

    batches_at_once = 1

    def __init__(self, is_suspicious: Callable[[Detection], bool]) -> None:
        self._is_suspicious = is_suspicious

    async def __call__(self, batch: Batch) -> Batch:
        return [detection for detection in batch if self._is_suspicious(detection)]


class PublishAlerts:
    """Publish an alert for each detection that reaches this step."""

    batches_at_once = 1

    def __init__(self, publisher: AlertPublisher, *, metrics: IndexerMetrics) -> None:
        self._publisher = publisher
        self._metrics = metrics

    async def __call__(self, batch: Batch) -> Batch:
        if batch:
            await self._publisher.publish(batch)
            self._metrics.alerts.inc(len(batch))
        return batch
