"""The alerts that wait for their batch's transaction: each commit takes those below its
offset, of its partition, and a partition given up takes its own with it; and the producers
of the transactions, none of which outlives them."""

import asyncio
import uuid

import pytest

from roadwatch.domain import Alert, RuleRef, Source
from roadwatch.indexer.dead_letter import DeadLetter
from roadwatch.indexer.pending import PendingAlerts, PendingLetters
from roadwatch.indexer.transactions import FencedButHeld, PartitionTransactions
from roadwatch.kafka.letters import Draft
from roadwatch.kafka.types import OffsetAndMetadata, ProducerFenced, TopicPartition
from tests.helpers.factories import make_detection

RULE = RuleRef(uuid.uuid4(), "SUVs")
ZERO, ONE = TopicPartition("d", 0), TopicPartition("d", 1)


def alert(partition: TopicPartition, offset: int) -> Alert:
    source = Source(partition.topic, partition.partition, offset)
    return Alert(make_detection(source=source), (RULE,))


async def test_a_commit_takes_the_alerts_below_its_offset_of_its_partition_only() -> None:
    pending = PendingAlerts()
    early, late, other = alert(ZERO, 2), alert(ZERO, 9), alert(ONE, 0)
    await pending.publish([early, late, other])

    assert pending.before(ZERO, 5) == [early]
    pending.settled(ZERO, 5)
    assert pending.before(ZERO, 100) == [late]
    assert pending.before(ONE, 1) == [other]


async def test_a_partition_given_up_forgets_its_alerts() -> None:
    pending = PendingAlerts()
    await pending.publish([alert(ZERO, 0), alert(ONE, 0)])
    pending.forget([ZERO])
    assert pending.before(ZERO, 10) == []
    assert len(pending.before(ONE, 10)) == 1


class Producer:
    """Counts its starts and stops; each start waits for `gate`. Once `fenced`, its commits
    fail as the broker's fence makes them."""

    def __init__(self, gate: asyncio.Event, made: list["Producer"]) -> None:
        self.gate = gate
        self.running = False
        self.fenced = False
        made.append(self)

    async def start(self) -> None:
        await self.gate.wait()
        self.running = True

    async def stop(self) -> None:
        self.running = False

    async def begin_transaction(self) -> None:
        assert self.running

    async def send_offsets_to_transaction(self, offsets: object, group: str) -> None:
        self.offsets = offsets

    async def commit_transaction(self) -> None:
        if self.fenced:
            raise ProducerFenced()
        self.committed = self.offsets


class Group:
    """The group coordinator's answers: whether this indexer holds a partition (raising
    `down` while it is set), and the offset committed (raising `offset_down`)."""

    def __init__(self, *, gives: bool, committed: int | None = None) -> None:
        self.gives = gives
        self.offset = committed
        self.asked = 0
        self.down: Exception | None = None
        self.offset_down: Exception | None = None

    async def holds(self, _partition: TopicPartition) -> bool:
        self.asked += 1
        if self.down is not None:
            raise self.down
        return self.gives

    async def committed(self, _partition: TopicPartition) -> int | None:
        if self.offset_down is not None:
            raise self.offset_down
        return self.offset


def transactions(
    gate: asyncio.Event, made: list[Producer], group: Group | None = None
) -> PartitionTransactions:
    return PartitionTransactions(
        lambda _id: Producer(gate, made),
        alerts_topic="alerts",
        group="g",
        pending=PendingAlerts(),
        holds=(group := group or Group(gives=True)).holds,
        committed=group.committed,
    )


async def test_no_producer_outlives_close_even_one_starting_or_assigned_late() -> None:
    gate, made = asyncio.Event(), list[Producer]()
    held = transactions(gate, made)
    starting = asyncio.create_task(held.assigned({ZERO}))
    await asyncio.sleep(0)
    await held.close()
    gate.set()
    await starting
    await held.assigned({ONE})
    assert len(made) == 1
    assert not any(producer.running for producer in made)


async def test_a_partition_has_one_producer_whoever_opens_it() -> None:
    gate, made = asyncio.Event(), list[Producer]()
    held = transactions(gate, made)
    gate.set()
    await held.assigned({ZERO})
    await held.assigned({ZERO})
    assert [producer.running for producer in made] == [True]
    await held.close()
    assert not made[0].running


async def test_a_commit_during_the_assignment_waits_for_its_producer_not_a_second() -> None:
    # A second producer of the same transactional id would fence the first: the indexer
    # would fence itself (found under `roadwatch up` on a fresh machine).
    gate, made = asyncio.Event(), list[Producer]()
    held = transactions(gate, made)
    assigning = asyncio.create_task(held.assigned({ZERO}))
    await asyncio.sleep(0)
    committing = asyncio.create_task(held.commit({ZERO: OffsetAndMetadata(1, "")}))
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(assigning, committing)
    assert len(made) == 1
    assert made[0].committed == {ZERO: OffsetAndMetadata(1, "")}
    await held.close()


class Refused(Exception):
    pass


async def test_a_failed_commit_raises_only_once_every_partitions_commit_has_ended() -> None:
    # The retry would otherwise begin a second transaction on a producer whose first is
    # still under way, and a second failure would go unread.
    gate, made = asyncio.Event(), list[Producer]()
    gate.set()
    by_id: dict[str, Producer] = {}

    def producer(transactional_id: str) -> Producer:
        by_id[transactional_id] = Producer(gate, made)
        return by_id[transactional_id]

    group = Group(gives=True)
    held = PartitionTransactions(
        producer,
        alerts_topic="alerts",
        group="g",
        pending=PendingAlerts(),
        holds=group.holds,
        committed=group.committed,
    )
    await held.assigned({ZERO, ONE})
    slow, refusing = by_id[held.transactional_id(ZERO)], by_id[held.transactional_id(ONE)]
    let_go = asyncio.Event()

    async def held_up(offsets: object, group: str) -> None:
        await let_go.wait()
        slow.offsets = offsets

    async def refused(offsets: object, group: str) -> None:
        raise Refused

    slow.send_offsets_to_transaction = held_up  # type: ignore[method-assign]
    refusing.send_offsets_to_transaction = refused  # type: ignore[method-assign]
    committing = asyncio.create_task(
        held.commit({ZERO: OffsetAndMetadata(1, ""), ONE: OffsetAndMetadata(1, "")})
    )
    for _ in range(20):
        await asyncio.sleep(0)
    assert not refusing.running, "the refused partition's producer was not let go"
    assert not committing.done(), "raised while another partition's commit was under way"
    let_go.set()
    with pytest.raises(Refused):
        await committing
    assert slow.committed == {ZERO: OffsetAndMetadata(1, "")}
    await held.close()
    assert not any(p.running for p in made)


async def _fenced_holder(group: Group) -> tuple[PartitionTransactions, list[Producer]]:
    """Transactions holding ZERO, whose producer is fenced, with an alert at offset 5 (the
    fake publishes none: its commits are of offset 1)."""
    gate, made = asyncio.Event(), list[Producer]()
    gate.set()
    held = transactions(gate, made, group)
    await held.assigned({ZERO})
    await held.pending.publish([alert(ZERO, 5)])
    made[0].fenced = True
    return held, made


async def test_fenced_while_the_group_still_gives_the_partition_the_retry_commits() -> None:
    # The broker fences a transaction that outlived its timeout too: the partition then
    # stalled, its alerts held, until the next rebalance.
    held, made = await _fenced_holder(Group(gives=True))
    with pytest.raises(FencedButHeld):
        await held.commit({ZERO: OffsetAndMetadata(1, "")})
    await held.commit({ZERO: OffsetAndMetadata(1, "")})
    assert len(made) == 2
    assert made[1].committed == {ZERO: OffsetAndMetadata(1, "")}
    assert len(held.pending.before(ZERO, 10)) == 1
    await held.close()
    assert not any(producer.running for producer in made)


async def test_fenced_by_the_partitions_next_holder_it_is_let_go_with_its_alerts() -> None:
    held, made = await _fenced_holder(Group(gives=False))
    await held.commit({ZERO: OffsetAndMetadata(1, "")})
    assert held.pending.before(ZERO, 10) == []
    # No other producer: it would fence the partition's rightful holder.
    await held.commit({ZERO: OffsetAndMetadata(2, "")})
    assert len(made) == 1
    await held.close()


async def test_no_producer_starts_after_a_fence_until_the_group_says_the_partition_is_held() -> (
    None
):
    group = Group(gives=True)
    group.down = ConnectionError("no coordinator")
    held, made = await _fenced_holder(group)
    for _attempt in range(2):
        with pytest.raises(ConnectionError):
            await held.commit({ZERO: OffsetAndMetadata(1, "")})
    assert (len(made), group.asked) == (1, 2)
    group.down = None
    await held.commit({ZERO: OffsetAndMetadata(1, "")})
    assert len(made) == 2
    assert made[1].committed == {ZERO: OffsetAndMetadata(1, "")}
    await held.close()


async def test_dead_letters_wait_for_their_batch_as_alerts_do() -> None:
    pending = PendingLetters("dlq")
    early, late, other = (
        DeadLetter(partition, offset, Draft(None, b"x", [], []))
        for partition, offset in ((ZERO, 2), (ZERO, 9), (ONE, 0))
    )
    await pending([early, late, other])
    assert pending.before(ZERO, 5) == [early]
    pending.settled(ZERO, 5)
    assert pending.before(ZERO, 100) == [late]
    pending.forget([ONE])
    assert pending.before(ONE, 1) == []


async def test_a_floor_unread_at_assignment_is_read_by_the_first_commit() -> None:
    gate, made = asyncio.Event(), list[Producer]()
    gate.set()
    group = Group(gives=True, committed=5)
    held = transactions(gate, made, group)
    pending = held.pending
    # Published by the previous holder's transaction, which committed 5.
    await pending.publish([alert(ZERO, 3)])
    group.offset_down = ConnectionError("the coordinator is away")
    await held.assigned({ZERO})
    assert len(made) == 1
    assert made[0].running
    group.offset_down = None
    # Wholly below the group's offset: nothing committed, nothing moved back.
    await held.commit({ZERO: OffsetAndMetadata(4, "")})
    assert not hasattr(made[0], "committed")
    await held.commit({ZERO: OffsetAndMetadata(7, "")})
    assert made[0].committed == {ZERO: OffsetAndMetadata(7, "")}
    assert pending.before(ZERO, 100) == []
