import gc
import logging
from typing import Annotated

import typer
from prometheus_client import CollectorRegistry

from roadwatch.cli.common import MetricsHost, MetricsPort, fail, local_settings, run_or_fail
from roadwatch.errors import ConfigurationError
from roadwatch.indexer.batch import MAX_BATCH
from roadwatch.infra.service import port_is_free
from roadwatch.kafka.topics import INDEXER_GROUP
from roadwatch.settings import Settings
from roadwatch.shutdown import stop_on_signals

log = logging.getLogger("roadwatch.indexer")

Group = Annotated[str, typer.Option(help="Kafka consumer group; indexers in one group share.")]
MaxBatch = Annotated[int, typer.Option(min=1, help="The most records handled as one batch.")]


def indexer(
    group: Group = INDEXER_GROUP,
    max_batch: MaxBatch = MAX_BATCH,
    metrics_port: MetricsPort = 0,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """Consume DETECTIONS_TOPIC, store every detection, publish alerts, until stopped."""
    if metrics_port and not port_is_free(metrics_host, metrics_port):
        raise fail(ConfigurationError(f"indexer: metrics port {metrics_port} is already in use"))
    run_or_fail(
        _index(
            local_settings(),
            group=group,
            max_batch=max_batch,
            metrics_address=(metrics_host, metrics_port) if metrics_port else None,
        )
    )


async def _index(
    settings: Settings, *, group: str, max_batch: int, metrics_address: tuple[str, int] | None
) -> None:
    from roadwatch.bootstrap.indexer import started_indexer
    from roadwatch.runtime.health_server import serving_health

    stop = stop_on_signals()
    registry = CollectorRegistry()
    store = settings.detections_db_url.split("://", 1)[0]
    async with started_indexer(
        settings, stop=stop, group_id=group, max_batch=max_batch, registry=registry
    ) as indexer:
        probes = {
            "broker": indexer.ping_broker,
            "store": indexer.ping_store,
            "progress": indexer.check_progress,
        }
        async with serving_health(metrics_address, registry=registry, probes=probes):
            # Every batch makes thousands of short-lived objects; collecting the young
            # generation less often, and never scanning what start-up made, saves a good
            # share of the CPU.
            gc.freeze()
            gc.set_threshold(50_000, 20, 20)
            log.info("indexing %s into %s (group %s)", settings.detections_topic, store, group)
            await indexer.run(stop)
    log.info("stopped")
