"""The alerts an API process saw last, which every resume by Last-Event-ID is served from.

A resume used to open a Kafka consumer of its own and read back from where its client had
got to, however far: forty resumes from the start of a topic of 20,000 alerts cost 23 s of
the API's CPU and 267 MB. Now the feed keeps the last `most` alerts (and no more than
`most_bytes` of them) in one window, filled from Kafka once as the feed starts and then by
the feed itself as it follows. Every resume reads this window: its work is bounded by it,
and resumes at once share it. A client that missed more than the window holds is told so,
and reads the rest from /alerts/history.
"""

from collections import deque
from dataclasses import dataclass

Position = dict[int, int]


@dataclass(frozen=True, slots=True)
class Kept:
    partition: int
    offset: int
    data: str
    # The ids of the rules it matched, as the alert spells them.
    rules: frozenset[str]


@dataclass(frozen=True, slots=True)
class Gap:
    """Alerts of a partition that a resume asked for and the window no longer holds."""

    partition: int
    # The first offset missed, and the first the window holds.
    missed_from: int
    resumed_at: int


class RecentAlerts:
    def __init__(self, *, most: int, most_bytes: int) -> None:
        self.most = most
        self._most_bytes = most_bytes
        self._kept: deque[Kept] = deque()
        self._bytes = 0
        # Per partition, the first offset the window holds (everything from it on, that
        # the feed has read).
        self._first: Position = {}

    def start_at(self, partition: int, offset: int) -> None:
        """The window holds this partition from `offset` on (where filling it starts)."""
        self._first.setdefault(partition, offset)

    def add(self, alert: Kept) -> None:
        self._kept.append(alert)
        self._bytes += len(alert.data)
        while len(self._kept) > self.most or self._bytes > self._most_bytes:
            gone = self._kept.popleft()
            self._bytes -= len(gone.data)
            self._first[gone.partition] = gone.offset + 1

    def since(self, cursor: Position, until: Position) -> tuple[list[Kept], list[Gap]]:
        """The alerts after `cursor` and before `until`, per partition, in the order read;
        and, per partition, what was asked for and is no longer held."""
        gaps = [
            Gap(partition, offset, self._first[partition])
            for partition, offset in sorted(cursor.items())
            if offset < self._first.get(partition, offset)
        ]
        starts = {p: max(o, self._first.get(p, o)) for p, o in cursor.items()}
        alerts = [
            kept
            for kept in self._kept
            if starts.get(kept.partition, until.get(kept.partition, 0))
            <= kept.offset
            < until.get(kept.partition, 0)
        ]
        return alerts, gaps

    def __len__(self) -> int:
        return len(self._kept)
