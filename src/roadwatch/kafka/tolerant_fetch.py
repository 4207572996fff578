"""aiokafka's fetcher made total: whatever bytes a broker returns, reading goes on.

aiokafka parses fetched batches inside `getmany`. Its parser decodes header names as UTF-8,
which no broker checks; a batch whose compression fails to undo raises; and a batch whose
checksum fails is fetched again for ever. Any of these comes out of `getmany`, drops the
records drained beside it from other partitions, and comes out again on the next call: the
consumer can never pass that record.

`install()` puts two classes into aiokafka's fetcher. The first keeps each batch's bytes and
wraps the batch. Iterating the wrapper yields the fast parser's records until it raises;
then the rest of the batch is read again in Python (lenient_records.py), record by record,
and each record that cannot be read is yielded as an `Unreadable`, in its place. The second
builds roadwatch's own Record (record.py) where aiokafka would build a ConsumerRecord, and
gives each Unreadable its topic and partition; `getmany` returns them among the records.
No exception is left for a record's bytes to raise, and no record is skipped unseen.

This reaches into aiokafka's module and its Python record parser: the version is pinned in
constraints.txt, and tests/unit/test_tolerant_fetch.py fails if either changes.
"""

import itertools
import operator
import struct
from collections.abc import Iterator
from typing import Any

import msgspec
from aiokafka.consumer import fetcher
from aiokafka.record.default_records import (
    DefaultRecordBatch,
)
from aiokafka.record.legacy_records import LegacyRecordBatch
from aiokafka.structs import TopicPartition

from roadwatch.kafka.lenient_records import LenientBatch
from roadwatch.kafka.record import Record
from roadwatch.kafka.unreadable import NOWHERE, Unreadable
from roadwatch.rejections import Reason

# A batch starts with its base offset (8 bytes) and its length (4); its magic byte follows
# the partition leader epoch (4).
_LOG_OVERHEAD = 12
_MAGIC_AT = 16
_first = operator.itemgetter(0)


class _KeptBatches:
    """A fetch response's record batches, each with its bytes (in place of MemoryRecords)."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._next = self._cut()

    def size_in_bytes(self) -> int:
        return len(self._data)

    def has_next(self) -> bool:
        return self._next is not None

    def next_batch(self) -> "_Batch | None":
        raw = self._next
        if raw is None:
            return None
        self._next = self._cut()
        return _Batch(raw)

    def _cut(self) -> memoryview | None:
        # A response may end inside a batch, cut short by the fetch size: that part is
        # fetched again whole.
        pos = self._pos
        if len(self._data) - pos < _LOG_OVERHEAD:
            return None
        (length,) = struct.unpack_from(">i", self._data, pos + 8)
        end = pos + _LOG_OVERHEAD + length
        if length < 0 or end > len(self._data):
            return None
        self._pos = end
        return self._data[pos:end]


class _Batch:
    """One record batch as aiokafka's fetcher uses it; iterating it never raises."""

    def __init__(self, raw: memoryview) -> None:
        self._raw = raw
        self._magic = raw[_MAGIC_AT] if len(raw) > _MAGIC_AT else -1
        self._batch: Any = None
        self._broken = ""
        try:
            if self._magic >= 2:
                self._batch = DefaultRecordBatch(bytes(raw))
            else:
                self._batch = LegacyRecordBatch(bytes(raw), self._magic)
        except Exception as error:
            self._broken = _describe(error)
        self._iterator: Iterator[Any] | None = None

    # What aiokafka's fetcher asks of a batch.

    @property
    def base_offset(self) -> int:
        return int.from_bytes(self._raw[:8], "big", signed=True)

    @property
    def next_offset(self) -> int:
        # Never behind the batch's start, whatever its header says: the fetcher resumes
        # from here, and a batch whose checksum failed may hold any offset delta.
        claimed = self._batch.next_offset if self._batch is not None else 0
        return max(int(claimed), self.base_offset + 1)

    @property
    def producer_id(self) -> int | None:
        return self._batch.producer_id if self._batch is not None else None

    @property
    def is_control_batch(self) -> bool:
        return self._batch is not None and bool(self._batch.is_control_batch)

    @property
    def is_transactional(self) -> bool:
        return self._batch is not None and bool(self._batch.is_transactional)

    def validate_crc(self) -> bool:
        # Checked when the batch is read, which makes a mismatch an Unreadable rather than
        # a batch fetched again for ever.
        return True

    def __iter__(self) -> Iterator[Any]:
        return self._records()

    def __next__(self) -> Any:
        # aiokafka reads a control batch's first record with next().
        if self._iterator is None:
            self._iterator = self._records()
        return next(self._iterator)

    # Reading.

    def _records(self) -> Iterator[Any]:
        batch = self._batch
        if batch is None:
            why = f"its header does not parse: {self._broken}"
            yield self._lost(Reason.UNREADABLE_BATCH, why)
            return
        if not batch.validate_crc():
            yield self._lost(Reason.UNREADABLE_BATCH, "its checksum does not match its bytes")
            return
        # One record at a time, as the fast parser reads them (a batch held whole costs the
        # garbage collector more than it saves), counted without a Python call each.
        counted = itertools.count()
        try:
            yield from map(_first, zip(batch, counted, strict=False))
        except Exception as error:
            if self._magic < 2:
                yield self._lost(Reason.UNREADABLE_BATCH, _describe(error))
                return
            yield from self._read_slowly()[next(counted) :]

    def _read_slowly(self) -> list[Any]:
        """The batch again in Python; each record that cannot be read is an Unreadable in
        its place."""
        batch = LenientBatch(bytes(self._raw))
        records: list[Any] = []
        try:
            for record in batch:
                records.append(record)
        except Exception as error:
            # Past a record that does not parse, where the next one starts is unknown.
            records.append(
                self._lost(
                    Reason.CORRUPT_RECORD if records else Reason.UNREADABLE_BATCH,
                    _describe(error),
                    first=batch.last_offset_read + 1 if records else None,
                )
            )
        return records

    def _lost(self, reason: Reason, why: str, *, first: int | None = None) -> Unreadable:
        last = self.next_offset - 1
        first = self.base_offset if first is None else first
        offsets = f"offset {last}" if first >= last else f"offsets {first} to {last}"
        return Unreadable(*NOWHERE, last, -1, None, None, (), reason, f"{offsets}: {why}")


class _TolerantPartitionRecords(fetcher.PartitionRecords):  # type: ignore[misc]
    """aiokafka's records of a fetched partition, each made a roadwatch Record, or an
    Unreadable placed in its topic and partition, where aiokafka would build a
    ConsumerRecord. roadwatch's consumers take bytes: no deserializer is applied."""

    def __iter__(self) -> Iterator[Any]:
        # The generator itself, where aiokafka's iterator is its object with a `__next__`
        # written in Python: a call a record less for `getmany`, which drains it with `for`.
        return self._records_iterator or iter(())

    def _consumer_record(self, tp: TopicPartition, record: Any) -> Record | Unreadable:
        if record.__class__ is Unreadable:
            return msgspec.structs.replace(record, topic=tp.topic, partition=tp.partition)
        return Record(
            tp.topic,
            tp.partition,
            record.offset,
            record.timestamp,
            record.key,
            record.value,
            tuple(record.headers),
        )


_AIOKAFKAS_OWN = (fetcher.MemoryRecords, fetcher.PartitionRecords)


def install() -> None:
    """Make every aiokafka consumer of this process read through the classes above."""
    fetcher.MemoryRecords = _KeptBatches
    fetcher.PartitionRecords = _TolerantPartitionRecords


def uninstall() -> None:
    """Put aiokafka's own classes back: for measuring what `install` costs."""
    fetcher.MemoryRecords, fetcher.PartitionRecords = _AIOKAFKAS_OWN


def _describe(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:300]
