import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Hashable, Mapping
from datetime import UTC, datetime
from typing import Literal

import orjson
from rich.logging import RichHandler

# Attributes every LogRecord has; anything else was passed with `extra=` and is worth printing.
_STANDARD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's copy of the message with terminal colours
}


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with the fields given through `extra=`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(
            (key, value) for key, value in vars(record).items() if key not in _STANDARD_ATTRIBUTES
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure_logging(level: str = "INFO", style: Literal["console", "json"] = "console") -> None:
    handler: logging.Handler
    if style == "json":
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
    elif sys.stderr.isatty():
        handler = RichHandler(show_path=False, rich_tracebacks=True)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # The Kafka client logs every failed connection attempt; its retries are ours to report.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    logging.getLogger("alembic").setLevel(logging.WARNING)


class Throttled:
    """A logger's warnings of each kind at most once every `every` seconds, for what bad
    input makes a process say: a broken camera or a hostile producer gets a line of each kind
    now and then, not one a record or a batch. The first of a kind is logged at once; the
    next one logged says how many were held back meanwhile. The metrics count every one.
    Kinds must be few (reasons, not records): one time is kept for each."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        every: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._every = every
        self._clock = clock
        self._last: dict[Hashable, float] = {}
        self._held: Counter[Hashable] = Counter()

    def warning(
        self,
        kind: Hashable,
        message: str,
        *args: object,
        extra: Mapping[str, object] | None = None,
    ) -> None:
        now = self._clock()
        last = self._last.get(kind)
        if last is not None and now - last < self._every:
            self._held[kind] += 1
            return
        self._last[kind] = now
        held = self._held.pop(kind, 0)
        if held:
            message += "; %d more such line(s) held back since the last"
            args = (*args, held)
        self._logger.warning(message, *args, extra=extra)
