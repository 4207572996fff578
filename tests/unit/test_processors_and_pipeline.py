import asyncio
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from roadwatch.domain import Alert
from roadwatch.indexer.metrics import IndexerMetrics
from roadwatch.indexer.pipeline import OrderedPipeline, Stage, Wide
from roadwatch.indexer.processors import MatchWatchlists, PublishAlerts
from roadwatch.watchlists.matching import RuleIndex
from roadwatch.watchlists.rules import seed_rule
from tests.helpers.factories import make_detection
from tests.helpers.waiting import settled


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[Alert] = []

    async def publish(self, alerts: Sequence[Alert]) -> None:
        self.published += alerts


async def test_only_matching_detections_become_alerts_naming_the_rule_and_are_published() -> None:
    publisher = RecordingPublisher()
    registry = CollectorRegistry()
    batch = [make_detection(category=c) for c in ("SUV", "Sedan", "Pickup, SUV", "Wagon")]
    seed = seed_rule("SUV")

    alerts = await MatchWatchlists(lambda: RuleIndex([seed]))(batch)
    published = await PublishAlerts(publisher, metrics=IndexerMetrics(registry))(alerts)

    assert [alert.detection for alert in alerts] == [batch[0], batch[2]]
    assert {alert.rules for alert in alerts} == {(seed.ref,)}
    assert publisher.published == published == alerts
    assert registry.get_sample_value("roadwatch_alerts_published_total") == 2


async def test_nothing_is_published_for_a_batch_without_suspicious_detections() -> None:
    publisher = RecordingPublisher()
    registry = CollectorRegistry()

    await PublishAlerts(publisher, metrics=IndexerMetrics(registry))([])

    assert publisher.published == []
    assert registry.get_sample_value("roadwatch_alerts_published_total") == 0


async def test_every_stage_sees_every_batch_in_order_while_stages_overlap() -> None:
    seen: dict[str, list[int]] = {"slow": [], "fast": [], "last": []}
    busy: set[str] = set()
    overlapped = False

    def stage(name: str, seconds: float) -> Stage[int]:
        async def work(item: int) -> None:
            nonlocal overlapped
            busy.add(name)
            overlapped = overlapped or len(busy) > 1
            await asyncio.sleep(seconds)
            seen[name].append(item)
            busy.discard(name)

        return work

    pipeline: OrderedPipeline[int] = OrderedPipeline(
        [stage("slow", 0.01), stage("fast", 0.001), stage("last", 0.005)]
    )
    running = asyncio.create_task(pipeline.run())
    for item in range(20):
        await pipeline.put(item)
    await pipeline.finished()
    await pipeline.close()
    await running

    assert seen == {name: list(range(20)) for name in seen}
    assert overlapped


async def test_a_wide_stage_works_on_batches_at_once_and_passes_them_on_in_order() -> None:
    at_once = 0
    most_at_once = 0
    after: list[int] = []

    async def wide(item: int) -> None:
        nonlocal at_once, most_at_once
        at_once += 1
        most_at_once = max(most_at_once, at_once)
        # Even items take longer, so odd ones finish first unless held back.
        await asyncio.sleep(0.02 if item % 2 == 0 else 0.001)
        at_once -= 1

    async def next_stage(item: int) -> None:
        after.append(item)

    pipeline: OrderedPipeline[int] = OrderedPipeline([Wide(wide, 2), next_stage])
    running = asyncio.create_task(pipeline.run())
    for item in range(10):
        await pipeline.put(item)
    await pipeline.finished()
    await pipeline.close()
    await running

    assert after == list(range(10))
    assert most_at_once == 2


async def test_batches_wait_outside_the_pipeline_while_its_stages_are_full() -> None:
    in_pipeline = 0
    most_in_pipeline = 0
    release = asyncio.Event()

    async def first(_item: int) -> None:
        nonlocal in_pipeline, most_in_pipeline
        in_pipeline += 1
        most_in_pipeline = max(most_in_pipeline, in_pipeline)

    async def blocked(_item: int) -> None:
        await release.wait()

    async def last(_item: int) -> None:
        nonlocal in_pipeline
        in_pipeline -= 1

    pipeline: OrderedPipeline[int] = OrderedPipeline([first, Wide(blocked, 2), last])
    running = asyncio.create_task(pipeline.run())
    for item in range(3):  # two in the wide stage, one held in the first
        await pipeline.put(item)
    fourth = asyncio.create_task(pipeline.put(3))
    await settled()

    assert not fourth.done()
    release.set()
    await fourth
    await pipeline.finished()
    await pipeline.close()
    await running
    assert most_in_pipeline == 3
    assert in_pipeline == 0


async def test_a_failing_stage_stops_the_pipeline_with_its_error() -> None:
    async def fine(_item: int) -> None:
        return None

    async def broken(item: int) -> None:
        if item == 3:
            raise RuntimeError("store gone")

    pipeline: OrderedPipeline[int] = OrderedPipeline([fine, broken])
    running = asyncio.create_task(pipeline.run())
    for item in range(3):
        await pipeline.put(item)
    await pipeline.put(3)

    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="store gone")):
        await running


async def test_waiting_for_the_batches_to_finish_ends_when_the_pipeline_stops_unfinished() -> None:
    """A rebalance waits for the batches read so far; a pipeline stopped by a failure (a
    retry given up as the indexer stops) never finishes them, and must not hold it forever."""
    held = asyncio.Event()

    async def stuck(item: int) -> None:
        if item == 0:
            await held.wait()

    async def broken(item: int) -> None:
        raise RuntimeError("given up")

    pipeline: OrderedPipeline[int] = OrderedPipeline([Wide(stuck, 2), broken])
    running = asyncio.create_task(pipeline.run())
    await pipeline.put(0)
    await pipeline.put(1)
    waiting = asyncio.create_task(pipeline.finished())
    held.set()
    with pytest.RaisesGroup(pytest.RaisesExc(RuntimeError, match="given up")):
        await running
    async with asyncio.timeout(5):
        await waiting
