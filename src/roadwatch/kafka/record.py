"""A record as every roadwatch process reads it: what aiokafka's ConsumerRecord holds that
roadwatch uses, and no more."""

import msgspec


# Built in C, where aiokafka builds a dataclass in Python: reading took 2.5 µs of CPU a record
# through aiokafka's ConsumerRecord and 1.2 µs through this (tests/unit/test_tolerant_fetch.py
# holds the two to the same fields). It holds no object that could hold it back, so the
# garbage collector need not track it (gc=False).
class RecordFields(msgspec.Struct, frozen=True, gc=False):
    """Where a record stands and what it holds: a Record's fields, and an Unreadable's."""

    topic: str
    partition: int
    offset: int
    # Milliseconds since the epoch: the producer's time, or the broker's for a topic that
    # stamps records as it appends them.
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


class Record(RecordFields, frozen=True, gc=False):
    """A record read as Kafka's protocol defines one."""
