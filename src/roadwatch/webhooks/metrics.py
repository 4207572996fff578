"""The deliverer's Prometheus metrics."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DELAYS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10, 30)


class DeliveryMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.attempts = Counter(
            "roadwatch_webhook_deliveries",
            "Webhook POSTs made, by result: delivered, retry (failed, to be tried again) or "
            "failed (given up, dead-lettered)",
            ["result"],
            registry=registry,
        )
        self.first_attempt_delay = Histogram(
            "roadwatch_webhook_first_attempt_delay_seconds",
            "From an alert's publication to the end of its first POST to a subscription",
            buckets=DELAYS,
            registry=registry,
        )
        self.pending = Gauge(
            "roadwatch_webhook_retry_queue_depth",
            "Deliveries waiting in the database for a retry",
            registry=registry,
        )
        self.oldest_pending = Gauge(
            "roadwatch_webhook_oldest_pending_seconds",
            "Age of the oldest delivery waiting for a retry (0: none waits)",
            registry=registry,
        )
        self.subscriptions = Gauge(
            "roadwatch_webhook_subscriptions", "Enabled webhook subscriptions", registry=registry
        )
        self.skipped = Counter(
            "roadwatch_webhook_records_skipped",
            "Records of the alerts topic that are not alerts, dead-lettered unsent",
            registry=registry,
        )
