"""How far the indexer has got: what is committed, and how old its oldest open batch is."""

import time
from collections.abc import Iterable
from typing import Protocol

from roadwatch.indexer.batch import Batch
from roadwatch.indexer.commits import Offsets
from roadwatch.kafka.types import TopicPartition


class Positions(Protocol):
    def assignment(self) -> Iterable[TopicPartition]: ...
    def highwater(self, partition: TopicPartition) -> int | None: ...


class Progress:
    """Lag counts what is not yet committed, so a batch stuck in the pipeline shows in it."""

    def __init__(self, consumer: Positions) -> None:
        self._consumer = consumer
        self._committed: dict[TopicPartition, int] = {}
        # The batches read and not finished, by identity, with when they arrived.
        self._open: dict[int, float] = {}

    def read(self, batch: Batch) -> None:
        self._open[id(batch)] = batch.arrived
        for partition, records in batch.records.items():
            # Until the first commit of ours, the first record read is where we stand.
            self._committed.setdefault(partition, records[0].offset)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions handed to another indexer: what we knew of them goes out of date."""
        for partition in partitions:
            self._committed.pop(partition, None)

    def finished(self, batch: Batch) -> None:
        self._open.pop(id(batch), None)

    def committed(self, offsets: Offsets) -> None:
        self._committed.update({tp: o.offset for tp, o in offsets.items()})

    def oldest_open_seconds(self) -> float:
        """How long the oldest batch read but not finished has been open; 0 when none is."""
        return time.perf_counter() - min(self._open.values()) if self._open else 0.0

    def lags(self) -> dict[TopicPartition, int]:
        """Per assigned partition, the records not yet committed."""
        lags = {}
        for tp in self._consumer.assignment():
            highwater = self._consumer.highwater(tp)
            committed = self._committed.get(tp)
            if highwater is not None and committed is not None:
                lags[tp] = max(highwater - committed, 0)
        return lags
