"""What MongoDB's errors mean to the store: a refusal of the data, which no retry mends, a
server busy or away, or an outage to wait out."""

import contextlib
import re
from collections.abc import Iterator

import pymongo
from bson.errors import BSONError
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import (
    BulkWriteError,
    ConnectionFailure,
    DocumentTooLarge,
    OperationFailure,
    PyMongoError,
)

from roadwatch.rejections import Reason, RecordsRefused, RejectedMessage
from roadwatch.stores.detection_store import StoreBusy, StoreUnreachable
from roadwatch.stores.mongo_documents import Document

DUPLICATE_KEY = 11000
# Codes of a server that is stepping down, shutting down, or timing out: try again.
TRANSIENT_CODES = {6, 7, 50, 89, 91, 112, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436}
# Codes of a write refused for the values it holds: bad value, type mismatch, a field named
# like an operator, a failed validation, a document or index key too large.
DATA_CODES = {2, 14, 52, 121, 10334, 17280}
# FerretDB passes on its PostgreSQL's refusals, SQLSTATE and all: data exceptions (22),
# integrity violations (23) and values beyond a limit (54) are the data's fault.
POSTGRES_DATA_ERROR = re.compile(r"SQLSTATE (22|23|54)[0-9A-Z]{3}")
# And its PostgreSQL away, as an InternalError (code 1): a connection refused or lost
# (class 08, or its own dial), a server shutting down (57) or out of resources (53).
INTERNAL_ERROR = 1
POSTGRES_AWAY = re.compile(r"SQLSTATE (08|53|57)[0-9A-Z]{3}|dial error")


@contextlib.contextmanager
def busy_when_slow(within: float | None = None) -> Iterator[None]:
    """StoreBusy for a read that took too long, StoreUnreachable for a server away. Given
    `within`, the block's operations share one deadline (pymongo.timeout): a read made of
    many queries, as counts over a long window are, answers within it as a whole, where the
    client's own timeout bounds each query alone."""
    deadline = contextlib.nullcontext() if within is None else pymongo.timeout(within)
    try:
        with deadline:
            yield
    except PyMongoError as error:
        if error.timeout:
            raise StoreBusy("the query took longer than allowed", cause=error) from None
        if isinstance(error, ConnectionFailure) or server_away(error):
            raise StoreUnreachable("the database cannot be reached", cause=error) from None
        raise


def server_away(error: PyMongoError) -> bool:
    """Whether the server answered that it cannot serve for now: MongoDB stepping down or
    shutting down, or FerretDB without its PostgreSQL. A reader is told to come back."""
    if not isinstance(error, OperationFailure):
        return False
    if error.code in TRANSIENT_CODES or error.has_error_label("RetryableWriteError"):
        return True
    return error.code == INTERNAL_ERROR and POSTGRES_AWAY.search(str(error)) is not None


@contextlib.contextmanager
def refused_for_the_data_held(what: str = "") -> Iterator[None]:
    """RecordsRefused for a write refused for what its documents hold, which no retry mends:
    an encoding error (raised before anything reached the server), or the server's."""
    try:
        yield
    except BulkWriteError:
        raise
    except (BSONError, UnicodeError, DocumentTooLarge) as error:
        raise RecordsRefused(f"{what}{type(error).__name__}: {error}") from error
    except OperationFailure as error:
        if refused_for_the_data(error):
            raise RecordsRefused(f"{what}MongoDB {error.code}: {error}") from error
        raise


def refused_for_the_data(error: OperationFailure) -> bool:
    if error.code in TRANSIENT_CODES or error.has_error_label("RetryableWriteError"):
        return False
    return error.code in DATA_CODES or bool(POSTGRES_DATA_ERROR.search(str(error)))


async def insert_new(
    collection: AsyncCollection[Document], documents: list[Document], first_index: int
) -> tuple[set[int], dict[int, RejectedMessage]]:
    """Insert what is not stored yet; return the batch indexes of the duplicates, and
    of the documents the server refused, with why."""
    try:
        with refused_for_the_data_held():
            await collection.insert_many(documents, ordered=False)
    except BulkWriteError as error:
        if error.details.get("writeConcernErrors"):
            raise
        duplicates, refused = set(), {}
        for entry in error.details.get("writeErrors", []):
            index = first_index + entry["index"]
            code, message = entry["code"], str(entry.get("errmsg"))
            if code == DUPLICATE_KEY:
                duplicates.add(index)
            elif code in TRANSIENT_CODES:
                raise
            else:
                refused[index] = RejectedMessage(Reason.STORE_REFUSED, f"MongoDB {code}: {message}")
        return duplicates, refused
    return set(), {}
