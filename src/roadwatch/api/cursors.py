"""Keyset cursors: an opaque token for a place in the newest-first order."""

import base64
import binascii
from datetime import UTC, datetime, timedelta
from uuid import UUID

from roadwatch.errors import Invalid
from roadwatch.stores.detection_store import Position

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


class InvalidCursor(Invalid):
    def __str__(self) -> str:
        return "the cursor is not one this API issued"


def encode_cursor(position: Position) -> str:
    """Any position a store can return encodes, even at the ends of time."""
    moment = position.timestamp
    if moment.tzinfo is None:  # how asyncpg returns PostgreSQL's ±infinity
        moment = moment.replace(tzinfo=UTC)
    milliseconds = (moment - _EPOCH) // _MILLISECOND
    raw = f"{milliseconds}:{position.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        milliseconds, identifier = raw.split(":")
        timestamp = _EPOCH + int(milliseconds) * _MILLISECOND
        return Position(timestamp, UUID(identifier))
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError):
        raise InvalidCursor from None
