"""How many alert streams a user, and the process, may hold."""

import resource
import uuid

import pytest

from roadwatch.api.stream_slots import (
    RESERVED_FILES,
    StreamSlots,
    TooManyStreams,
    streams_the_process_can_hold,
)


def test_a_user_holds_at_most_their_share_and_others_are_not_affected() -> None:
    slots = StreamSlots(per_user=3, total=100)
    greedy, other = uuid.uuid4(), uuid.uuid4()
    held = [slots.take(greedy) for _ in range(3)]
    with pytest.raises(TooManyStreams, match="this user has 3"):
        slots.take(greedy)
    slots.take(other)
    held[0].release()
    slots.take(greedy)


def test_the_process_holds_at_most_its_total_and_a_slot_is_given_back_once() -> None:
    slots = StreamSlots(per_user=10, total=2)
    first = slots.take(uuid.uuid4())
    slots.take(uuid.uuid4())
    with pytest.raises(TooManyStreams, match="this server has 2"):
        slots.take(uuid.uuid4())
    first.release()
    first.release()
    assert slots.open == 1


def test_the_total_is_what_the_open_file_limit_leaves() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # The limit as systemd sets it by default, lowered here for the test's while.
    lowered = min(1024, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        assert streams_the_process_can_hold() == max(1, lowered - RESERVED_FILES)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
