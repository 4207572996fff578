"""Raw Kafka message -> Detection, or the reason it is rejected."""

import functools
import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
import orjson

from roadwatch.detection_ids import derived_id
from roadwatch.domain import Detection, Source
from roadwatch.kafka.record import Record
from roadwatch.rejections import Reason, RejectedMessage
from roadwatch.text import UnsafeText, normalise

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024
MAX_TEXT_LENGTH = 128
MIN_YEAR = 1886
# Next year's models are on the road before next year begins.
MAX_YEAR_AHEAD = 2
# Any year up to this stays valid while the process runs: a year is checked against the
# clock only beyond it.
_LATEST_YEAR_AT_START = time.gmtime().tm_year + MAX_YEAR_AHEAD
TEXT_FIELDS = ("make", "model", "category")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A detection's time lies in this window: cameras of this century, clocks at most a month
# fast. Outside it a time is a fault, and one the stores and cursors might not even hold.
# The indexer takes a narrower window still, as configured (DETECTIONS_ACCEPT_AHEAD_DAYS).
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_AHEAD = timedelta(days=30)
_EARLIEST_MS = int((EARLIEST - _EPOCH).total_seconds() * 1000)
_LATEST_AHEAD_MS = int(LATEST_AHEAD.total_seconds() * 1000)


@dataclass(frozen=True, slots=True)
class ParseLimits:
    max_bytes: int = MAX_MESSAGE_BYTES
    max_text_length: int = MAX_TEXT_LENGTH


class _ChallengeMessage(msgspec.Struct, forbid_unknown_fields=True, rename="pascal"):
    """Exactly {"Year": …, "Make": …, "Model": …, "Category": …}, as the producer sends it."""

    # Years beyond this are checked against the clock, by the general way.
    year: Annotated[int, msgspec.Meta(ge=MIN_YEAR, le=_LATEST_YEAR_AT_START)]
    make: str
    model: str
    category: str


_decode_challenge_message = msgspec.json.Decoder(_ChallengeMessage).decode

# Cameras report the same few thousand vehicles all day, in the same bytes: a message of the
# producer's spelling seen lately is taken as it was checked then. The producer's catalog
# (9,581 vehicles, messages of at most 113 bytes) fits. Only short messages are kept, so the
# cache holds about 12 MB at most however hostile the stream; one that misses costs a lookup.
CHECKED_MESSAGES_KEPT = 16_384
_KEPT_UP_TO_BYTES = 128
_Checked = tuple[int, str, str, str]


@functools.lru_cache(maxsize=CHECKED_MESSAGES_KEPT)
def _checked_challenge_message(value: bytes, max_text_length: int) -> _Checked | None:
    """Year, make, model and category of a message in the producer's own spelling, checked;
    None for any other message, which the general way reads. Raises for a bad text (not
    kept: lru_cache keeps what returns)."""
    try:
        message = _decode_challenge_message(value)
    except (msgspec.MsgspecError, ValueError):
        # Invalid UTF-8 among them, which the general way names.
        return None
    # Checked in the order the general way checks them, so both name the same fault.
    return (
        message.year,
        _valid_text("make", message.make, max_text_length),
        _valid_text("model", message.model, max_text_length),
        _valid_text("category", message.category, max_text_length),
    )


def parse_detection(
    value: bytes | None,
    *,
    source: Source,
    timestamp_ms: int,
    limits: ParseLimits = ParseLimits(),
) -> Detection:
    """One message's detection; RejectedMessage, raised, says why there is none."""
    record = Record(source.topic, source.partition, source.offset, timestamp_ms, None, value, ())
    (parsed,) = parse_records([record], limits=limits)
    if isinstance(parsed, RejectedMessage):
        raise parsed
    return parsed


def _parse_generally(
    value: bytes | None, source: Source, timestamp_ms: int, limits: ParseLimits
) -> Detection:
    """Any message the producer's spelling does not fit: the way that names what is wrong."""
    if value is None:
        raise RejectedMessage(Reason.NOT_JSON, "the message has no value")
    if len(value) > limits.max_bytes:
        raise RejectedMessage(
            Reason.TOO_LARGE, f"{len(value)} bytes, more than the {limits.max_bytes} allowed"
        )
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise RejectedMessage(Reason.NOT_JSON, str(error)) from None
    if not isinstance(document, dict):
        raise RejectedMessage(
            Reason.NOT_AN_OBJECT, f"expected a JSON object, got {type(document).__name__}"
        )
    fields = {str(key).lower(): field for key, field in document.items()}
    texts = [_text(fields, name, limits.max_text_length) for name in TEXT_FIELDS]
    milliseconds = _timestamp(fields.get("timestamp"), timestamp_ms)
    return Detection(
        id=_id(fields.get("id"), source, milliseconds),
        timestamp=_time(milliseconds),
        year=_year(fields),
        make=texts[0],
        model=texts[1],
        category=texts[2],
        source=source,
    )


def parse_records(
    records: Iterable[Record], *, limits: ParseLimits = ParseLimits()
) -> list[Detection | RejectedMessage]:
    """Each record's detection, or why it is rejected, in the records' order; never raises.
    A short message of the producer's own spelling, timed in the window, decodes straight
    into typed fields, checked once (the cache above) and without a call between (a quarter
    of a record's cost under load); any other goes the general way."""
    parsed: list[Detection | RejectedMessage] = []
    keep = parsed.append
    # A batch is read at one moment: the window's end is taken once for it.
    latest_ms = time.time_ns() // 1_000_000 + _LATEST_AHEAD_MS
    kept_up_to = min(_KEPT_UP_TO_BYTES, limits.max_bytes)
    max_text_length = limits.max_text_length
    for record in records:
        value, milliseconds = record.value, record.timestamp
        source = Source(record.topic, record.partition, record.offset)
        try:
            if (
                value is not None
                and len(value) <= kept_up_to
                and _EARLIEST_MS <= milliseconds <= latest_ms
            ):
                checked = _checked_challenge_message(value, max_text_length)
                if checked is not None:
                    year, make, model, category = checked
                    keep(
                        Detection(
                            derived_id(source, milliseconds),
                            _time(milliseconds),
                            year,
                            make,
                            model,
                            category,
                            source,
                        )
                    )
                    continue
            keep(_parse_generally(value, source, milliseconds, limits))
        except RejectedMessage as rejected:
            keep(rejected)
        except Exception as error:
            # The parser names every fault it knows; this is one it did not foresee.
            log.exception("decoding the record at %s failed unexpectedly", source)
            keep(RejectedMessage(Reason.UNDECODABLE, f"{type(error).__name__}: {error}"))
    return parsed


def _show(value: object, limit: int = 60) -> str:
    """A value for an error message, cut short: messages are logged, bodies must not be."""
    shown = repr(value)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _required(fields: dict[str, object], name: str) -> object:
    if name not in fields or fields[name] is None:
        raise RejectedMessage(Reason.MISSING_FIELD, f"{name!r} is missing")
    return fields[name]


def _text(fields: dict[str, object], name: str, max_length: int) -> str:
    return _valid_text(name, _required(fields, name), max_length)


def _valid_text(name: str, value: object, max_length: int) -> str:
    if not isinstance(value, str):
        raise RejectedMessage(
            Reason.INVALID_FIELD, f"{name!r} must be a string, got {type(value).__name__}"
        )
    try:
        text = normalise(value)
    except UnsafeText as unsafe:
        raise RejectedMessage(Reason.INVALID_FIELD, f"{name!r} {unsafe}") from None
    if not text:
        raise RejectedMessage(Reason.INVALID_FIELD, f"{name!r} is empty")
    if len(text) > max_length:
        raise RejectedMessage(
            Reason.INVALID_FIELD, f"{name!r} is {len(text)} characters, over {max_length}"
        )
    return text


def _year(fields: dict[str, object]) -> int:
    return _valid_year(_required(fields, "year"))


def _valid_year(value: object) -> int:
    # bool is an int to Python, but `true` is no model year.
    if not isinstance(value, int) or isinstance(value, bool):
        raise RejectedMessage(
            Reason.INVALID_FIELD, f"'year' must be an integer, got {type(value).__name__}"
        )
    if MIN_YEAR <= value <= _LATEST_YEAR_AT_START:
        return value
    latest = time.gmtime().tm_year + MAX_YEAR_AHEAD
    if not MIN_YEAR <= value <= latest:
        raise RejectedMessage(
            Reason.INVALID_FIELD, f"'year' {value} is outside {MIN_YEAR}..{latest}"
        )
    return value


def _id(value: object, source: Source, milliseconds: int) -> uuid.UUID:
    if value is None:
        return derived_id(source, milliseconds)
    if not isinstance(value, str):
        raise RejectedMessage(
            Reason.INVALID_FIELD, f"'id' must be a UUID string, got {_show(value)}"
        )
    try:
        return uuid.UUID(value)
    except ValueError:
        raise RejectedMessage(Reason.INVALID_FIELD, f"'id' {_show(value)} is not a UUID") from None


def _within_window(milliseconds: int, what: str) -> int:
    # Compared as integers first: any int64 would overflow a datetime somewhere.
    latest_ms = time.time_ns() // 1_000_000 + _LATEST_AHEAD_MS
    if not _EARLIEST_MS <= milliseconds <= latest_ms:
        raise RejectedMessage(
            Reason.INVALID_FIELD,
            f"{what} {_show(milliseconds)} ms is not between {EARLIEST:%Y-%m-%d} "
            "and 30 days from now",
        )
    return milliseconds


# Under load, records come in runs stamped with the same millisecond.
@functools.lru_cache(maxsize=1)
def _time(milliseconds: int) -> datetime:
    """A time of the window, exactly: to a microsecond, a double holds milliseconds since
    the epoch in this century without loss, and this is a third of timedelta's cost."""
    return datetime.fromtimestamp(milliseconds / 1000, UTC)


def _timestamp(value: object, kafka_timestamp_ms: int) -> int:
    """The time of detection in milliseconds since the epoch: what both stores can hold
    exactly."""
    if value is None:
        # The Kafka record's own time, for a message that carries none.
        return _within_window(kafka_timestamp_ms, "the record's timestamp")
    if isinstance(value, int) and not isinstance(value, bool):
        return _within_window(value, "'timestamp'")
    if isinstance(value, str):
        try:
            parsed: datetime | None = datetime.fromisoformat(value)
        except ValueError:
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:
                raise RejectedMessage(
                    Reason.INVALID_FIELD, f"'timestamp' {_show(value)} has no time zone"
                )
            # Aware times subtract without overflow, even at year 1 with an offset.
            return _within_window((parsed - _EPOCH) // timedelta(milliseconds=1), "'timestamp'")
    raise RejectedMessage(
        Reason.INVALID_FIELD,
        f"'timestamp' must be epoch milliseconds or an ISO 8601 time, got {_show(value)}",
    )
