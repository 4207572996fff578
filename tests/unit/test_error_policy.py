import asyncio
from collections.abc import Sequence

import pytest

from roadwatch.domain import Detection
from roadwatch.indexer.error_policy import ErrorPolicy
from roadwatch.rejections import Reason, RecordsRefused, RejectedMessage
from tests.helpers.factories import make_detection


class PickyStep:
    """Refuses any batch holding a make it dislikes, without saying which detection."""

    batches_at_once = 1

    def __init__(self, disliked: str = "Bad", *, names_culprits: bool = False) -> None:
        self.disliked = disliked
        self.names_culprits = names_culprits
        self.accepted: list[Detection] = []
        self.calls = 0

    async def __call__(self, batch: Sequence[Detection]) -> Sequence[Detection]:
        self.calls += 1
        bad = {i for i, d in enumerate(batch) if d.make == self.disliked}
        if bad and self.names_culprits:
            why = RejectedMessage(Reason.ID_CONFLICT, "held elsewhere")
            raise RecordsRefused("some refused", culprits=dict.fromkeys(bad, why))
        if bad:
            raise RecordsRefused("value too long for type character varying(3)")
        self.accepted += batch
        return batch


def mixed(count: int, bad_at: set[int]) -> list[Detection]:
    return [make_detection(make="Bad" if i in bad_at else "Good") for i in range(count)]


@pytest.mark.parametrize("bad_at", [set(), {0}, {99}, {3, 4, 5}, {0, 50, 99}, set(range(100))])
async def test_halving_finds_exactly_the_refused_detections_and_passes_the_rest_in_order(
    bad_at: set[int],
) -> None:
    batch = mixed(100, bad_at)
    step = PickyStep()

    passing, refused = await ErrorPolicy(stop=asyncio.Event()).apply(step, batch, what="saving")

    assert list(passing) == [d for i, d in enumerate(batch) if i not in bad_at]
    assert step.accepted == list(passing)
    assert [d for d, _why in refused] == [batch[i] for i in sorted(bad_at)]
    assert all(why.reason == Reason.STORE_REFUSED for _d, why in refused)
    assert all("character varying" in why.detail for _d, why in refused)


async def test_one_bad_detection_in_a_large_batch_costs_few_calls() -> None:
    step = PickyStep()
    await ErrorPolicy(stop=asyncio.Event()).apply(step, mixed(5000, {1234}), what="saving")
    assert step.calls <= 2 * 13 + 1


async def test_named_culprits_are_refused_with_their_own_reason_in_one_more_call() -> None:
    batch = mixed(10, {2, 7})
    step = PickyStep(names_culprits=True)

    passing, refused = await ErrorPolicy(stop=asyncio.Event()).apply(step, batch, what="saving")

    assert step.calls == 2
    assert len(passing) == 8
    assert {d.source for d, _why in refused} == {batch[2].source, batch[7].source}
    assert {why.reason for _d, why in refused} == {Reason.ID_CONFLICT}


async def test_a_transient_failure_is_retried_until_it_passes_and_refuses_nothing() -> None:
    failures = 3

    async def flaky(batch: Sequence[Detection]) -> Sequence[Detection]:
        nonlocal failures
        if failures:
            failures -= 1
            raise ConnectionResetError("database restarting")
        return batch

    batch = mixed(5, set())
    passing, refused = await ErrorPolicy(stop=asyncio.Event()).apply(flaky, batch, what="saving")

    assert (list(passing), refused, failures) == (batch, [], 0)


async def test_a_step_failing_too_long_is_reported_and_no_longer_once_it_passes() -> None:
    policy = ErrorPolicy(stop=asyncio.Event(), stuck_after=0.0)
    failing = True
    reported: list[str | None] = []

    async def outage(batch: Sequence[Detection]) -> Sequence[Detection]:
        nonlocal failing
        if failing:
            reported.append(policy.problem())
            if len(reported) == 3:
                failing = False
            raise ConnectionRefusedError("no server")
        return batch

    assert policy.problem() is None
    await policy.apply(outage, mixed(1, set()), what="saving a batch")

    assert reported[0] is None  # not failing yet when first tried
    assert reported[2] is not None
    assert "saving a batch has failed" in reported[2]
    assert "ConnectionRefusedError: no server" in reported[2]
    assert policy.problem() is None
