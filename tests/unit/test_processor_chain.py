from collections.abc import Sequence

from prometheus_client import CollectorRegistry

from roadwatch.domain import Detection
from roadwatch.indexer.metrics import IndexerMetrics
from roadwatch.indexer.processors import DetectSuspicious, Processor, PublishAlerts, run_chain
from roadwatch.rules import SuspicionRule
from tests.factories import make_detection


class RecordingPublisher:
    def __init__(self) -> None:
        self.published: list[Detection] = []

    async def publish(self, suspicious: Sequence[Detection]) -> None:
        self.published += suspicious


class Recorder:
    """A step that remembers what reached it, standing in for any processor."""

    def __init__(self) -> None:
        self.seen: list[Sequence[Detection]] = []

    async def __call__(self, batch: Sequence[Detection]) -> Sequence[Detection]:
        self.seen.append(batch)
        return batch


async def test_only_suspicious_detections_reach_the_alert_step() -> None:
    publisher = RecordingPublisher()
    registry = CollectorRegistry()
    metrics = IndexerMetrics(registry)
    batch = [make_detection(category=c) for c in ("SUV", "Sedan", "Pickup, SUV", "Wagon")]

    passed = await run_chain(
        [DetectSuspicious(SuspicionRule("SUV")), PublishAlerts(publisher, metrics=metrics)],
        batch,
    )

    assert publisher.published == [batch[0], batch[2]]
    assert passed == publisher.published
    assert registry.get_sample_value("roadwatch_alerts_published_total") == 2


async def test_a_step_that_filters_everything_ends_the_chain() -> None:
    after = Recorder()
    chain: list[Processor] = [DetectSuspicious(SuspicionRule("SUV")), after]

    assert await run_chain(chain, [make_detection(category="Sedan")]) == []
    assert after.seen == []


async def test_adding_a_step_is_adding_an_entry() -> None:
    first, second = Recorder(), Recorder()
    batch = [make_detection()]

    await run_chain([first, second], batch)

    assert first.seen == [batch]
    assert second.seen == [batch]
