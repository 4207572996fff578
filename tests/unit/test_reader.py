"""The reader splits what is fetched: records go on, unreadable ones to the topic's policy,
and the ends move past both."""

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from aiokafka.structs import TopicPartition

from roadwatch.kafka.reader import Reader, SkipUnreadable
from roadwatch.kafka.unreadable import Unreadable
from roadwatch.rejections import Reason
from tests.helpers.records import consumer_record

TP = TopicPartition("t", 0)


def unreadable(offset: int, reason: Reason = Reason.HEADER_NOT_UTF8) -> Unreadable:
    return Unreadable("t", 0, offset, -1, None, b"v", (), reason, "why")


class Fetches:
    """Hands out one prepared fetch."""

    def __init__(self, items: list[Any]) -> None:
        self._items = items

    async def getmany(
        self, *partitions: TopicPartition, timeout_ms: int, max_records: int | None = None
    ) -> dict[TopicPartition, list[Any]]:
        return {TP: self._items}


async def test_records_go_on_the_unreadable_to_the_policy_and_the_end_passes_both() -> None:
    handed: list[Unreadable] = []

    async def policy(records: Sequence[Unreadable]) -> None:
        handed.extend(records)

    items = [consumer_record(b"a", offset=0), unreadable(1), consumer_record(b"c", offset=2)]
    fetched = await Reader(Fetches([*items, unreadable(3)]), on_unreadable=policy).read(
        timeout_ms=0
    )

    assert [r.offset for r in fetched.records[TP]] == [0, 2]
    assert [u.offset for u in handed] == [1, 3]
    assert fetched.ends == {TP: 4}


async def test_a_fetch_of_unreadable_records_only_still_moves_on() -> None:
    fetched = await Reader(Fetches([unreadable(7)]), on_unreadable=SkipUnreadable()).read(
        timeout_ms=0
    )
    assert fetched.records == {}
    assert fetched.ends == {TP: 8}
    assert fetched


async def test_skipping_a_flood_counts_each_and_logs_a_line_a_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counted: Counter[Reason] = Counter()
    flood = [unreadable(n, Reason.HEADER_NOT_UTF8) for n in range(1000)]
    flood += [unreadable(n, Reason.UNREADABLE_BATCH) for n in range(1000, 1500)]

    with caplog.at_level(logging.WARNING, logger="roadwatch.kafka.reader"):
        await SkipUnreadable(counted=lambda reason: counted.update([reason]))(flood)

    assert counted == {Reason.HEADER_NOT_UTF8: 1000, Reason.UNREADABLE_BATCH: 500}
    assert len(caplog.records) == 2
    assert "skipped 1000 unreadable record(s) as header_not_utf8" in caplog.records[0].message
