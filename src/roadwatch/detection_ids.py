"""The id of a detection whose message carries none, derived from its record's place."""

import hashlib
import uuid

# A uuid.UUID made in C from its 16 bytes, in a fifth of the standard one's time: the class
# asyncpg reads every UUID back as, and one its COPY writes without a call into Python.
from asyncpg.pgproto.pgproto import UUID as FastUUID

from roadwatch.domain import Source

# Ids derived from a record's position hash it under this namespace.
DETECTION_NAMESPACE = uuid.UUID("6f1d5a0e-5a51-4c4b-9a55-3c43d9e5b6f1")
# SHA-1 having read the namespace already: a copy of it reads only the record's place.
_HASHED_NAMESPACE = hashlib.sha1(DETECTION_NAMESPACE.bytes, usedforsecurity=False)
# The version (bits 48-51) and the variant (bits 64-65) of a UUIDv7, counted from the left.
_NOT_VERSION_OR_VARIANT = ~((0xF << 76) | (0x3 << 62))
_VERSION_7_VARIANT = (0x7 << 76) | (0x2 << 62)


def derived_id(source: Source, milliseconds: int) -> uuid.UUID:
    """The id of a detection whose message has none: a replay of the record gets the same one.

    It is laid out as a UUIDv7 (RFC 9562): the detection's time (`milliseconds` since the
    epoch), then 74 bits of SHA-1 over the namespace and "topic/partition/offset". Ids
    stored one after another then sort one after another, so the index that keeps each id
    once grows at its end rather than at a random page, and stays in memory however large
    the table grows.
    """
    hashed = _HASHED_NAMESPACE.copy()
    hashed.update(f"{source.topic}/{source.partition}/{source.offset}".encode())
    value = (milliseconds << 80) | int.from_bytes(hashed.digest()[:10])
    return FastUUID(((value & _NOT_VERSION_OR_VARIANT) | _VERSION_7_VARIANT).to_bytes(16))
