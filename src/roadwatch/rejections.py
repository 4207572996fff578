"""Why a record is set aside: the words the dead-letter topic carries."""

from collections.abc import Mapping
from enum import StrEnum

from roadwatch.errors import RoadwatchError


class Reason(StrEnum):
    # Given by the parser.
    NOT_JSON = "not_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    INVALID_FIELD = "invalid_field"
    TOO_LARGE = "too_large"
    # Given by the indexer: decoding failed in a way of no kind above; the store refused the
    # record for what it holds; another record holds the id that this one carries; the
    # detection is older than the retention window.
    UNDECODABLE = "undecodable"
    STORE_REFUSED = "store_refused"
    ID_CONFLICT = "id_conflict"
    EXPIRED = "expired"
    # Given by the indexer: detected longer ago than the store takes (DETECTIONS_ACCEPT_DAYS),
    # or further ahead of the indexer's clock (DETECTIONS_ACCEPT_AHEAD_DAYS).
    TOO_OLD = "too_old"
    TOO_NEW = "too_new"
    # Given by the Kafka reader, for a record that is not one as Kafka's protocol defines it:
    # a header name that is not UTF-8; a record whose bytes do not parse (with the rest of
    # its batch); a batch that cannot be read at all (its checksum, or its compression).
    HEADER_NOT_UTF8 = "header_not_utf8"
    CORRUPT_RECORD = "corrupt_record"
    UNREADABLE_BATCH = "unreadable_batch"


class RejectedMessage(RoadwatchError):
    """A message that is not a valid detection; `reason` is a fixed word, `detail` says more."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


class RecordsRefused(RoadwatchError):
    """A step refused records for what they hold, so trying them again cannot help.

    `culprits` names them by their place in the step's input, each with its rejection.
    Without it the step could not tell which records were at fault: all of the input is
    suspect, and the indexer's error policy finds the culprits by halving it. Either way
    nothing the step did for this input counts, and it is given the rest again.
    """

    def __init__(
        self,
        detail: str,
        *,
        reason: Reason = Reason.STORE_REFUSED,
        culprits: Mapping[int, RejectedMessage] | None = None,
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.culprits = dict(culprits or {})

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"
