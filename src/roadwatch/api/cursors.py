"""Keyset cursors: an opaque token for a place in the newest-first order."""

import base64
import binascii
from datetime import UTC, datetime
from uuid import UUID

from roadwatch.errors import RoadwatchError
from roadwatch.stores.base import Position


class InvalidCursor(RoadwatchError):
    def __str__(self) -> str:
        return "the cursor is not one this API issued"


def encode_cursor(position: Position) -> str:
    milliseconds = int(position.timestamp.timestamp() * 1000)
    raw = f"{milliseconds}:{position.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        milliseconds, identifier = raw.split(":")
        timestamp = datetime.fromtimestamp(int(milliseconds) // 1000, UTC).replace(
            microsecond=int(milliseconds) % 1000 * 1000
        )
        return Position(timestamp, UUID(identifier))
    except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError, OSError):
        raise InvalidCursor from None
