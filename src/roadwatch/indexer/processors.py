"""The steps a batch of detections goes through; each returns what the next one should see."""

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from roadwatch.alerts import AlertPublisher
from roadwatch.domain import Detection
from roadwatch.stores.base import DetectionStore

log = logging.getLogger(__name__)

Batch = Sequence[Detection]


class Processor(Protocol):
    async def __call__(self, batch: Batch) -> Batch: ...


class Persist:
    """Store the batch; pass all of it on, so a replayed detection still raises its alert."""

    def __init__(self, store: DetectionStore) -> None:
        self._store = store

    async def __call__(self, batch: Batch) -> Batch:
        await self._store.save(batch)
        return batch


class DetectSuspicious:
    """Keep only the detections the rule finds suspicious."""

    def __init__(self, is_suspicious: Callable[[Detection], bool]) -> None:
        self._is_suspicious = is_suspicious

    async def __call__(self, batch: Batch) -> Batch:
        return [detection for detection in batch if self._is_suspicious(detection)]


class PublishAlerts:
    """Publish an alert for each detection that reaches this step."""

    def __init__(self, publisher: AlertPublisher) -> None:
        self._publisher = publisher

    async def __call__(self, batch: Batch) -> Batch:
        if batch:
            await self._publisher.publish(batch)
        return batch


async def run_chain(chain: Sequence[Processor], batch: Batch) -> Batch:
    for processor in chain:
        if not batch:
            break
        batch = await processor(batch)
    return batch
