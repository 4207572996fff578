"""Which offsets of the alerts topic may be committed: those whose every delivery is either
acknowledged by its receiver or held durably for a retry."""

from collections import deque


class OffsetTracker:
    """Per partition, the records taken in order, and how many deliveries each still awaits.

    `committable` is the offset after the longest settled run from the front, the offset a
    restart resumes from: a record is replayed unless it and everything before it settled.
    """

    def __init__(self) -> None:
        self._waiting: dict[int, dict[int, int]] = {}
        self._order: dict[int, deque[int]] = {}
        self._next: dict[int, int] = {}
        self._committed: dict[int, int] = {}

    def taken(self, partition: int, offset: int, deliveries: int) -> None:
        order = self._order.setdefault(partition, deque())
        self._waiting.setdefault(partition, {})[offset] = deliveries
        order.append(offset)
        if deliveries == 0 and len(order) == 1:
            self._advance(partition)

    def settled(self, partition: int, offset: int) -> None:
        waiting = self._waiting.get(partition)
        if waiting is None or offset not in waiting:
            return  # revoked meanwhile: the partition's new owner replays it
        waiting[offset] -= 1
        if self._order[partition][0] == offset:
            self._advance(partition)

    def _advance(self, partition: int) -> None:
        order, waiting = self._order[partition], self._waiting[partition]
        while order and waiting[order[0]] <= 0:
            offset = order.popleft()
            del waiting[offset]
            self._next[partition] = offset + 1

    def committable(self) -> dict[int, int]:
        """Offsets to commit (the next offset to read), per partition that moved on since
        the last commit."""
        return {p: o for p, o in self._next.items() if self._committed.get(p) != o}

    def committed(self, offsets: dict[int, int]) -> None:
        self._committed.update(offsets)

    def pending(self, partitions: set[int] | None = None) -> int:
        """Records taken and not yet settled, of these partitions (None: of every one)."""
        return sum(
            len(order)
            for partition, order in self._order.items()
            if partitions is None or partition in partitions
        )

    def partitions(self) -> set[int]:
        return set(self._order)

    def forget(self, partitions: set[int]) -> None:
        """Drop partitions that are no longer this process's."""
        for partition in partitions:
            self._waiting.pop(partition, None)
            self._order.pop(partition, None)
            self._next.pop(partition, None)
            self._committed.pop(partition, None)
