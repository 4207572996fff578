"""A short soak (`make soak` runs the long one): the whole system on a three-broker cluster
through one of each fault, several at once, checked from outside at the end."""

from pathlib import Path

import pytest
from soak.load import BAD_SHARE
from soak.report import report
from soak.run import SoakPlan, soak

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow, pytest.mark.soak]

KINDS = {
    "kill -9 indexer",
    "kill -9 api",
    "kill -9 deliverer",
    "postgres stopped",
    "broker killed",
    "controller restarted",
}


@pytest.mark.timeout(900)
async def test_a_short_soak_keeps_every_invariant_through_every_kind_of_fault(
    tmp_path: Path,
) -> None:
    result = await soak(
        SoakPlan(seconds=120, rate=200, seed=1, drain_limit=180), home=tmp_path / "soak"
    )
    text = report(result)
    assert {fault.planned.kind for fault in result.faults} == KINDS, text
    assert len(result.invariants) == 12, text
    assert result.held, text
    assert result.produced.acknowledged >= 120 * 200 * 0.9, text
    assert result.bad_sent >= 120 * 200 * BAD_SHARE * 0.5, text
