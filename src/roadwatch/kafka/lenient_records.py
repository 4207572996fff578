"""A record batch (magic 2) read again in Python, when the fast parser could not read it:
aiokafka's own Python parser, except that a header name that is not UTF-8 makes its record
an Unreadable instead of an exception, so the records after it are still read."""

from collections.abc import Callable
from typing import Any

from aiokafka.errors import CorruptRecordException
from aiokafka.record.default_records import _DefaultRecordBatchPy, _DefaultRecordPy
from aiokafka.record.util import decode_varint

from roadwatch.kafka.unreadable import NOWHERE, Unreadable
from roadwatch.rejections import Reason


class LenientBatch(_DefaultRecordBatchPy):  # type: ignore[misc]
    """aiokafka's Python parser of a batch (magic 2), but a header name that is not UTF-8
    makes its record an Unreadable instead of an exception."""

    _buffer: bytearray
    _pos: int
    last_offset_read = -1

    def _read_msg(
        self, decode_varint: Callable[[bytearray, int], tuple[int, int]] = decode_varint
    ) -> Any:
        # The record's layout, as Kafka's protocol gives it and aiokafka's parser reads it:
        # length, attributes, timestamp delta, offset delta, key, value, headers.
        buffer, pos = self._buffer, self._pos
        length, pos = decode_varint(buffer, pos)
        start = pos
        _attributes, pos = decode_varint(buffer, pos)
        timestamp_delta, pos = decode_varint(buffer, pos)
        offset_delta, pos = decode_varint(buffer, pos)
        key, pos = _sized(buffer, pos, decode_varint)
        value, pos = _sized(buffer, pos, decode_varint)
        count, pos = decode_varint(buffer, pos)
        if count < 0:
            raise CorruptRecordException(f"a negative count of headers, {count}")
        raw_headers: list[tuple[bytes, bytes | None]] = []
        for _ in range(count):
            name, pos = _sized(buffer, pos, decode_varint)
            if name is None:
                raise CorruptRecordException("a header without a name")
            header_value, pos = _sized(buffer, pos, decode_varint)
            raw_headers.append((name, header_value))
        if pos - start != length:
            raise CorruptRecordException(f"a record of {length} bytes that holds {pos - start}")
        self._pos = pos

        offset = self.base_offset + offset_delta
        self.last_offset_read = offset
        if self.timestamp_type == self.LOG_APPEND_TIME:
            timestamp = self.max_timestamp
        else:
            timestamp = self.first_timestamp + timestamp_delta
        try:
            headers = [(name.decode(), header_value) for name, header_value in raw_headers]
        except UnicodeDecodeError:
            escaped = tuple(
                (name.decode(errors="backslashreplace"), header_value)
                for name, header_value in raw_headers
            )
            bad = next(name for name, _value in raw_headers if not _is_utf8(name))
            return Unreadable(
                *NOWHERE,
                offset,
                timestamp,
                key,
                value,
                escaped,
                Reason.HEADER_NOT_UTF8,
                f"the header name {bad[:100]!r} is not UTF-8",
            )
        return _DefaultRecordPy(offset, timestamp, self.timestamp_type, key, value, headers)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def _sized(
    buffer: bytearray, pos: int, decode_varint: Callable[[bytearray, int], tuple[int, int]]
) -> tuple[bytes | None, int]:
    """A length-prefixed field (-1: null) at `pos`, and where the next starts."""
    size, pos = decode_varint(buffer, pos)
    if size < 0:
        return None, pos
    if pos + size > len(buffer):
        raise CorruptRecordException(f"a field of {size} bytes past the batch's end")
    return bytes(buffer[pos : pos + size]), pos + size
