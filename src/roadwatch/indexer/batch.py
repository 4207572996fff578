"""A batch: the records read together, what they decoded to, and what became of each."""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import cast

from roadwatch.domain import Detection, FromRecord, Source
from roadwatch.indexer.dead_letter import Rejection
from roadwatch.kafka.reader import Fetched
from roadwatch.kafka.types import OffsetAndMetadata, Record, TopicPartition
from roadwatch.rejections import RejectedMessage

Records = dict[TopicPartition, list[Record]]

# The most records read as one batch. Each batch costs a Kafka transaction for each of its
# partitions and a few statements in the store, whatever its size: under load, batches of
# 10,000 stored 13% more a second than batches of 5,000 (the store alone, fed either, is as
# fast), for about 40 MB more memory at the peak; 20,000 gained nothing more. A light
# stream makes small batches, since a read takes what has arrived.
MAX_BATCH = 10_000


# Each record's detection, or why it is rejected, in the records' order (parsing.py).
Decode = Callable[[list[Record]], list[Detection | RejectedMessage]]


@dataclass
class Batch:
    records: Records
    rejections: list[Rejection]
    # Per partition, the offset after the batch's last record: what committing it commits.
    offsets: dict[TopicPartition, OffsetAndMetadata]
    arrived: float
    # The consumer's generation when read; a batch of an earlier one is stale (rebalance).
    generation: int
    # What the next processor sees: each one's output, as in a chain.
    passing: Sequence[FromRecord] = ()
    stale: bool = False
    _by_source: dict[Source, Record] = field(default_factory=dict)

    def record_of(self, source: Source) -> Record:
        """The record a detection of this batch was read from."""
        if not self._by_source:
            self._by_source = {
                Source(r.topic, r.partition, r.offset): r
                for partition in self.records.values()
                for r in partition
            }
        return self._by_source[source]

    def reject(self, refused: Sequence[tuple[FromRecord, RejectedMessage]]) -> None:
        self.rejections += [(self.record_of(d.source), why) for d, why in refused]


def read_batch(fetched: Fetched, *, generation: int, decode: Decode) -> Batch:
    """Decode every record; each becomes a detection or a rejection."""
    arrived = time.perf_counter()
    records = fetched.records
    detections: list[Detection] = []
    rejections: list[Rejection] = []
    for partition_records in records.values():
        decoded = decode(partition_records)
        # Looked for without a Python call a record: nearly every batch holds none.
        if RejectedMessage not in map(type, decoded):
            detections += cast("list[Detection]", decoded)
            continue
        for record, outcome in zip(partition_records, decoded, strict=True):
            if isinstance(outcome, RejectedMessage):
                rejections.append((record, outcome))
            else:
                detections.append(outcome)
    # Past the unreadable records too, which the reader has dead-lettered.
    offsets = {partition: OffsetAndMetadata(end, "") for partition, end in fetched.ends.items()}
    return Batch(records, rejections, offsets, arrived, generation, passing=detections)
