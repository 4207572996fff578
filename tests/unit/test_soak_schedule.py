"""The soak's plan of faults: the same from the same seed, every kind of fault in even a
short run, and never two brokers out at once."""

import itertools

import pytest
from soak.schedule import BROKER_DOWN, PROCESS_ROLES, plan

MEMBERS = {"indexer": 2, "api": 2, "deliverer": 2}


def test_a_seed_gives_the_same_plan_and_another_seed_another() -> None:
    first = plan(600, 7, members=MEMBERS, brokers=3)
    assert plan(600, 7, members=MEMBERS, brokers=3) == first
    assert plan(600, 8, members=MEMBERS, brokers=3) != first


@pytest.mark.parametrize("seed", range(20))
def test_a_short_run_meets_every_kind_of_fault(seed: int) -> None:
    kinds = {fault.kind for fault in plan(120, seed, members=MEMBERS, brokers=3)}
    expected = {f"kill -9 {role}" for role in PROCESS_ROLES}
    assert kinds >= expected | {"postgres stopped", "broker killed", "controller restarted"}


@pytest.mark.parametrize("seconds", [120, 600, 3600])
def test_brokers_go_out_one_at_a_time_and_faults_end_before_the_load(seconds: int) -> None:
    planned = plan(seconds, 3, members=MEMBERS, brokers=3)
    brokers = [fault for fault in planned if fault.track == "brokers"]
    for before, after in itertools.pairwise(brokers):
        assert after.at >= before.at + before.down + 15
    assert all(fault.down <= BROKER_DOWN for fault in planned)
    assert all(0 < fault.at < seconds * 0.75 for fault in planned)
    for role, count in MEMBERS.items():
        assert {f.target for f in planned if f.track == role} <= set(range(count))
