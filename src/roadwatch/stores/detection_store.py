import builtins
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from operator import itemgetter
from uuid import UUID

from roadwatch.domain import Alert, Detection, Source
from roadwatch.errors import Busy
from roadwatch.rejections import Reason, RejectedMessage
from roadwatch.time_buckets import Bucket

# Totals beyond this are not counted exactly: a count costs as much as the rows it counts.
COUNT_CAP = 10_000


class StoreBusy(Busy):
    """A query ran out of its time, or found no connection free: try again shortly."""


class StoreUnreachable(StoreBusy):
    """The database does not answer: it is down, restarting, or out of connections."""


@dataclass(frozen=True, slots=True)
class DetectionFilter:
    """Which detections a listing covers; None matches any value."""

    make: str | None = None
    model: str | None = None
    category: str | None = None
    year: int | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which alerts a page of the history covers; None matches any."""

    rule: UUID | None = None
    since: datetime | None = None
    until: datetime | None = None


class Dimension(StrEnum):
    """What detections are counted by over time."""

    MAKE = "make"
    CATEGORY = "category"


@dataclass(frozen=True, slots=True)
class TimelineBucket:
    """One bucket of a timeline: detections by make or category, largest first, and alerts."""

    start: datetime
    counts: dict[str, int]
    alerts: int


@dataclass(frozen=True, slots=True)
class Position:
    """A place in the newest-first order: (timestamp, id) of the last detection seen."""

    timestamp: datetime
    id: UUID


class DetectionStore(ABC):
    """Where the indexer keeps detections and the per-make counts that go with them.

    `save` is idempotent for replays: a detection read from the same record (topic,
    partition, offset) as one stored already is not stored again, and the per-make counts
    move only for detections stored for the first time, in the same atomic step, so
    `count_by_make()` always equals `group_by_make()`. A stored detection is never replaced.

    `save` raises RecordsRefused for detections it will not store for what they hold: an id
    that a detection from another record holds (Reason.ID_CONFLICT), or a value the database
    refuses (Reason.STORE_REFUSED). Any other exception is the database's own trouble, to be
    retried. Either way the call may have stored part of the batch; saving the batch again,
    without the refused detections, completes it exactly.
    """

    # How many `save` calls the indexer may have running at once. Above 1 only for a store
    # whose saves of consecutive batches of one partition stay correct in any order.
    saves_at_once: int = 1

    @abstractmethod
    async def open(self) -> None:
        """Connect, and bring the schema or indexes up to date."""

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def ping(self) -> None:
        """Return if the database answers; raise otherwise."""

    @abstractmethod
    async def save(self, detections: Sequence[Detection]) -> int:
        """Store the detections not stored yet; return how many were new."""

    @abstractmethod
    async def count_by_make(self) -> dict[str, int]:
        """The maintained per-make counts, largest first; cheap whatever the store's size."""

    @abstractmethod
    async def count_by_category(self) -> dict[str, int]:
        """The maintained per-category counts, largest first; cheap whatever the store's
        size."""

    @abstractmethod
    async def group_by_make(self) -> dict[str, int]:
        """The per-make counts computed from the stored detections, largest first."""

    @abstractmethod
    async def counts_between(
        self, by: Dimension, since: datetime, until: datetime
    ) -> dict[str, int]:
        """The counts per make or category of [since, until), both on minute edges, largest
        first: from counts kept per minute, hour and day, whatever the store's size."""

    async def makes_between(self, since: datetime, until: datetime) -> dict[str, int]:
        return await self.counts_between(Dimension.MAKE, since, until)

    async def count_by(self, by: Dimension) -> dict[str, int]:
        """The maintained counts per make or per category, largest first."""
        return await (self.count_by_make() if by is Dimension.MAKE else self.count_by_category())

    @abstractmethod
    async def timeline(
        self, *, bucket: Bucket, since: datetime, until: datetime, by: Dimension
    ) -> builtins.list[TimelineBucket]:
        """Every bucket overlapping [since, until), oldest first, empty ones included."""

    @abstractmethod
    async def prepare_days(self, days: Iterable[date]) -> None:
        """Make ready to hold detections of these (UTC) days; saving prepares its own too."""

    @abstractmethod
    async def drop_days_before(self, day: date) -> builtins.list[date]:
        """Remove every detection and alert dated before `day` (UTC), with their counts, so
        that every count still equals a group-by over what is stored. Return the days
        removed."""

    @abstractmethod
    async def count(
        self, where: DetectionFilter = DetectionFilter(), *, cap: int | None = None
    ) -> int:
        """How many detections match; with `cap`, counting stops at cap + 1."""

    @abstractmethod
    async def list(
        self,
        where: DetectionFilter = DetectionFilter(),
        *,
        skip: int = 0,
        limit: int = 50,
        after: Position | None = None,
    ) -> list[Detection]:
        """Detections newest first, ties broken by id (descending).

        `after` continues from a position (keyset pagination, whose cost does not grow with
        depth); `skip` counts from there.
        """

    @abstractmethod
    async def save_alerts(self, alerts: Sequence[Alert]) -> int:
        """Keep the alerts for the history; one already kept (same id, the detection's) is
        kept as it was. Return how many were new."""

    @abstractmethod
    async def alerts(
        self,
        where: AlertFilter = AlertFilter(),
        *,
        limit: int = 50,
        after: Position | None = None,
    ) -> builtins.list[Alert]:
        """Alerts kept, newest detection first, ties broken by id (descending); `after`
        continues from a position."""


def id_conflict(id: UUID, source: Source, holder: Source | None) -> RejectedMessage:
    """`holder`: where the detection holding the id came from, or None when its document
    does not say (one roadwatch did not write)."""
    held_by = (
        "a document roadwatch did not write"
        if holder is None
        else f"the detection from {_where(holder)}"
    )
    return RejectedMessage(
        Reason.ID_CONFLICT,
        f"id {id} is already held by {held_by}; this one is from {_where(source)}",
    )


def _where(source: Source) -> str:
    return f"{source.topic}[{source.partition}]@{source.offset}"


def kept_counts_for(
    where: DetectionFilter, *, all_by: Dimension
) -> tuple[Dimension, str | None] | None:
    """The maintained counts that hold the detections `where` matches, whatever its times:
    one make's, one category's, or (key None) all of them, under `all_by`; None for a filter
    they do not keep (a model, a year, or a make and a category together)."""
    if where.model is not None or where.year is not None:
        return None
    if where.make is not None and where.category is not None:
        return None
    if where.make is not None:
        return Dimension.MAKE, where.make
    if where.category is not None:
        return Dimension.CATEGORY, where.category
    return all_by, None


def largest_first(counts: dict[str, int]) -> dict[str, int]:
    """By count, largest first, and by key (a make, a category) where counts are equal."""
    # Two sorts in C, rather than a Python key per entry: a sort stays stable in reverse.
    return dict(sorted(sorted(counts.items()), key=itemgetter(1), reverse=True))
