"""The indexer's Prometheus metrics."""

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from roadwatch.kafka.types import TopicPartition

BATCH_SIZES = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
LATENCIES = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class IndexerMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self.consumed = Counter(
            "roadwatch_detections_consumed",
            "Records read from the detections topic",
            registry=registry,
        )
        self.stored = Counter(
            "roadwatch_detections_stored",
            "Detections stored for the first time",
            registry=registry,
        )
        self.rejected = Counter(
            "roadwatch_detections_rejected",
            "Records sent to the dead-letter topic",
            ["reason"],
            registry=registry,
        )
        self.alerts = Counter(
            "roadwatch_alerts_published",
            "Alerts published: acknowledged by the broker, or with exactly-once alerts handed "
            "to the transaction that commits them with their batch",
            registry=registry,
        )
        self.batch_size = Histogram(
            "roadwatch_batch_size", "Records per batch", buckets=BATCH_SIZES, registry=registry
        )
        self.batch_seconds = Histogram(
            "roadwatch_batch_seconds",
            "From a batch's arrival to its commit",
            buckets=LATENCIES,
            registry=registry,
        )
        self.store_write_seconds = Histogram(
            "roadwatch_store_write_seconds",
            "Time to save one batch",
            buckets=LATENCIES,
            registry=registry,
        )
        self.oldest_open_batch = Gauge(
            "roadwatch_oldest_open_batch_seconds",
            "Age of the oldest batch read and not yet committed; it grows while one is stuck",
            registry=registry,
        )

        self.watchlist_rules = Gauge(
            "roadwatch_watchlist_rules",
            "Enabled watchlist rules in force in this indexer",
            registry=registry,
        )
        self.watchlist_skipped = Gauge(
            "roadwatch_watchlist_records_skipped",
            "Records of the watchlists topic skipped since start because they hold no rule",
            registry=registry,
        )

    def follow(
        self, *, lags: Callable[[], dict[TopicPartition, int]], oldest_open: Callable[[], float]
    ) -> None:
        """Read the lag and the oldest open batch's age from these, at every scrape."""
        self.oldest_open_batch.set_function(oldest_open)
        self._registry.register(_Lag(lags))


class _Lag(Collector):
    def __init__(self, lags: Callable[[], dict[TopicPartition, int]]) -> None:
        self._lags = lags

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "roadwatch_consumer_lag",
            "Records not yet committed, per partition",
            labels=["topic", "partition"],
        )
        for tp, lag in sorted(self._lags().items()):
            family.add_metric([tp.topic, str(tp.partition)], lag)
        yield family
