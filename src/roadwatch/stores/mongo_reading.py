"""Pages of documents read back from MongoDB, each document decoded and checked on its own.

MongoDB enforces no shape, nor does FerretDB: a collection holds whatever anyone with access
wrote into it, or an older roadwatch wrote. A field missing or of another type, text that is
not UTF-8, a date beyond Python's: the driver would fail the whole batch around such a
document, and the page with it. Here each document comes as raw BSON and is decoded alone;
one that is not what roadwatch writes is skipped and named in the log, and the page is
filled from the documents after it.
"""

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import bson
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.datetime_ms import DatetimeMS
from bson.errors import InvalidBSON
from bson.raw_bson import RawBSONDocument
from pymongo import DESCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

log = logging.getLogger(__name__)

T = TypeVar("T")
Document = dict[str, Any]

NEWEST_FIRST = [("timestamp", DESCENDING), ("_id", DESCENDING)]
RAW = CodecOptions(document_class=RawBSONDocument)
# A date beyond Python's range decodes to a DatetimeMS, which no shape accepts, instead of
# failing the decoding.
_DECODING: CodecOptions[Document] = CodecOptions(
    tz_aware=True, datetime_conversion=DatetimeConversion.DATETIME_AUTO
)
# A page reads on past at most this many skipped documents, so that a collection full of
# foreign documents costs a bounded read; a page cut short by them is its reader's last.
MOST_SKIPPED = 1000
_NAMED_UP_TO = 80


def lenient_client(url: str, **options: Any) -> AsyncMongoClient[Document]:
    """A client whose decoding fails no batch for one document in it, of any collection:
    text that is not UTF-8 comes with U+FFFD in its place, and a date beyond Python's range
    as a DatetimeMS. Pages of detections and alerts are read strictly, by newest_first."""
    return AsyncMongoClient(
        url,
        tz_aware=True,
        unicode_decode_error_handler="replace",
        datetime_conversion=DatetimeConversion.DATETIME_AUTO,
        **options,
    )


class ForeignDocument(ValueError):
    """A stored document that is not of the shape roadwatch writes."""


def decoded(raw: RawBSONDocument, *, max_bytes: int) -> Document:
    """The document's fields; ForeignDocument when it is larger than any roadwatch writes
    or is not valid BSON."""
    if len(raw.raw) > max_bytes:
        raise ForeignDocument(f"{len(raw.raw):,} bytes, over the {max_bytes:,} expected")
    try:
        return bson.decode(raw.raw, _DECODING)
    except (InvalidBSON, ValueError, OverflowError) as error:
        raise ForeignDocument(f"undecodable: {error}") from error


def older_than_place(timestamp: datetime | DatetimeMS, id: object) -> Document:
    """The documents after (timestamp, id) in the newest-first order."""
    return {
        "$or": [
            {"timestamp": {"$lt": timestamp}},
            {"timestamp": timestamp, "_id": {"$lt": id}},
        ]
    }


async def newest_first(
    collection: AsyncCollection[Document],
    query: Document,
    *,
    skip: int,
    limit: int,
    shape: Callable[[Document], T],
    max_bytes: int,
) -> list[T]:
    """Up to `limit` documents matching `query`, newest first, past the first `skip`, made
    into T by `shape` (which raises ForeignDocument for a document it cannot take)."""
    raw_collection = collection.with_options(codec_options=RAW)
    kept: list[T] = []
    skipped: list[str] = []
    # A page is read in one go, as the server can cut it; only if documents were skipped
    # is it read on, from the last one read, as far as the documents skipped may go.
    found, asked = raw_collection.find(query).sort(NEWEST_FIRST).skip(skip).limit(limit), limit
    while True:
        last: RawBSONDocument | None = None
        read = 0
        try:
            async for last in found:
                read += 1
                try:
                    kept.append(shape(decoded(last, max_bytes=max_bytes)))
                except ForeignDocument as why:
                    skipped.append(f"{_named(last)} ({why})")
                if len(kept) == limit or len(skipped) > MOST_SKIPPED:
                    break
        finally:
            await found.close()
        done = len(kept) == limit or len(skipped) > MOST_SKIPPED or read < asked
        if done or not skipped or last is None or (place := _place(last)) is None:
            break
        after = older_than_place(*place)
        asked = limit - len(kept) + MOST_SKIPPED + 1 - len(skipped)
        found = raw_collection.find({"$and": [query, after]} if query else after)
        found = found.sort(NEWEST_FIRST).limit(asked)
    if skipped:
        log.warning(
            "skipped %d document(s) of %s that roadwatch did not write as they are; the first: %s",
            len(skipped),
            collection.name,
            skipped[0],
        )
    return kept


async def by_id(
    collection: AsyncCollection[Document],
    ids: list[str],
    max_bytes: int,
    fields: Document | None = None,
) -> tuple[dict[str, Document], bool]:
    """The documents of these ids, each decoded on its own, with only `fields` (and _id);
    and whether any of them could not be decoded."""
    found = collection.with_options(codec_options=RAW).find({"_id": {"$in": ids}}, fields)
    documents: dict[str, Document] = {}
    unreadable = False
    async for raw in found:
        try:
            document = decoded(raw, max_bytes=max_bytes)
            documents[str(document["_id"])] = document
        except ForeignDocument:
            unreadable = True
    return documents, unreadable


def _place(raw: RawBSONDocument) -> tuple[datetime | DatetimeMS, object] | None:
    """Where a document stands in the newest-first order, if it has a date; its size does
    not matter here. Of those of the very same time, the documents whose _id is of another
    type than its own are not found after it (MongoDB compares values of one type)."""
    try:
        document = bson.decode(raw.raw, _DECODING)
    except (InvalidBSON, ValueError, OverflowError):
        return None
    timestamp = document.get("timestamp")
    if isinstance(timestamp, datetime | DatetimeMS) and "_id" in document:
        return timestamp, document["_id"]
    return None


def _named(raw: RawBSONDocument) -> str:
    try:
        name = repr(raw["_id"])
    except (KeyError, InvalidBSON, ValueError, OverflowError):
        name = "a document with no readable _id"
    return name[:_NAMED_UP_TO]
