"""A dead letter as Kafka takes it, whatever the record it carries held.

A producer refuses a record with neither key nor value, and one larger than a broker takes;
sending it again cannot help, and would hold up every record behind it. So a record with
neither carries an empty value, and says so, and one too large for a letter keeps its own
headers and as much of the rest as fits, and says what it lost.
"""

from dataclasses import dataclass

Headers = list[tuple[str, bytes | None]]
# Under the 1 MiB that a broker (max.message.bytes) and a producer (max_request_size) take
# by default, with room for the batch around the record.
MAX_LETTER_BYTES = 1_000_000


@dataclass(frozen=True, slots=True)
class Letter:
    key: bytes | None
    value: bytes | None
    headers: Headers


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
    room = limit - _size(key, None, headers + notes) - 100
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
