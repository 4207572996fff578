"""A dead letter as Kafka takes it, whatever the record it carries held.

A producer refuses a record with neither key nor value, and one larger than a broker takes;
sending it again cannot help, and would hold up every record behind it. So a record with
neither carries an empty value, and says so, and one too large for a letter keeps
roadwatch's headers and as much of the rest as fits, and says what it lost. A topic that
takes less than MAX_LETTER_BYTES (its max.message.bytes, or the broker's message.max.bytes,
is lower) refuses a letter as too large: its letters are then fitted to a quarter of the
size, and sent again.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from roadwatch.kafka.sizes import SizeLimit
from roadwatch.kafka.types import AIOKafkaProducer, MessageSizeTooLargeError

Headers = list[tuple[str, bytes | None]]
# Under the 1 MiB that a broker (max.message.bytes) and a producer (max_request_size) take
# by default, with room for the batch around the record.
MAX_LETTER_BYTES = 1_000_000
# Room for roadwatch's own headers, and a little of the record.
SMALLEST_LETTER = 4096


@dataclass(frozen=True, slots=True)
class Letter:
    key: bytes | None
    value: bytes | None
    headers: Headers


@dataclass(frozen=True, slots=True)
class Draft:
    """What a letter carries: the record's key, value and `original` headers, and
    roadwatch's `own`; fitted to a size as it is sent."""

    key: bytes | None
    value: bytes | None
    original: Headers
    own: Headers

    def fitted(self, limit: int = MAX_LETTER_BYTES) -> Letter:
        return fitted(self.key, self.value, original=self.original, own=self.own, limit=limit)


def fitted(
    key: bytes | None,
    value: bytes | None,
    *,
    original: Headers,
    own: Headers,
    limit: int = MAX_LETTER_BYTES,
) -> Letter:
    """The letter of a record: its `original` headers and then roadwatch's `own`."""
    notes: Headers = []
    if key is None and value is None:
        value = b""
        notes.append(("roadwatch.value", b"null"))
    headers = original + own
    if _size(key, value, headers) > limit:
        headers = own
        notes.append(("roadwatch.dropped_headers", str(len(original)).encode()))
    # Room for two notes of what was cut.
    room = limit - _size(None, None, headers + notes) - 100
    if key is not None and len(key) > room:
        notes.append(("roadwatch.key_length", str(len(key)).encode()))
        key = key[: max(room, 0)]
    room -= len(key or b"")
    if value is not None and len(value) > room:
        notes.append(("roadwatch.value_length", str(len(value)).encode()))
        value = value[: max(room, 0)]
    return Letter(key, value, headers + notes)


def _size(key: bytes | None, value: bytes | None, headers: Headers) -> int:
    return (
        len(key or b"")
        + len(value or b"")
        + sum(len(name.encode()) + len(data or b"") for name, data in headers)
    )


def letter_size() -> SizeLimit:
    """How large a letter to a topic may be: MAX_LETTER_BYTES, until the topic refuses one."""
    return SizeLimit("a dead letter", "letters", largest=MAX_LETTER_BYTES, smallest=SMALLEST_LETTER)


async def send_letters(
    producer: AIOKafkaProducer, topic: str, drafts: Sequence[Draft], size: SizeLimit
) -> None:
    """Send `drafts` to `topic`, fitted to `size`, and wait until the broker has taken every
    one; raises if any was refused, after fitting the next ones smaller if it was refused as
    too large."""
    limit = size.limit
    deliveries: list[asyncio.Future[object]] = []
    refused: BaseException | None = None
    for draft in drafts:
        letter = draft.fitted(limit)
        try:
            deliveries.append(
                await producer.send(topic, letter.value, key=letter.key, headers=letter.headers)
            )
        except MessageSizeTooLargeError as error:
            # Over the producer's own max_request_size, checked before sending.
            refused = error
            break
    outcomes = [refused, *await asyncio.gather(*deliveries, return_exceptions=True)]
    if any(isinstance(o, MessageSizeTooLargeError) for o in outcomes):
        size.refused(topic)
    failed = next((o for o in outcomes if isinstance(o, BaseException)), None)
    if failed is not None:
        raise failed
