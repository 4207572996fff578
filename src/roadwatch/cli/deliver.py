import logging
from typing import Annotated

import typer
from prometheus_client import CollectorRegistry

from roadwatch.cli.common import MetricsHost, MetricsPort, fail, local_settings, run_or_fail
from roadwatch.errors import ConfigurationError
from roadwatch.infra.service import port_is_free
from roadwatch.kafka.topics import DELIVER_GROUP
from roadwatch.settings import Settings
from roadwatch.shutdown import stop_on_signals

log = logging.getLogger("roadwatch.deliver")

Group = Annotated[str, typer.Option(help="Kafka consumer group; deliverers in one group share.")]


def deliver(
    group: Group = DELIVER_GROUP,
    metrics_port: MetricsPort = 0,
    metrics_host: MetricsHost = "127.0.0.1",
) -> None:
    """POST every alert to the webhooks that want it, retrying failures, until stopped."""
    if metrics_port and not port_is_free(metrics_host, metrics_port):
        raise fail(ConfigurationError(f"deliver: metrics port {metrics_port} is already in use"))
    run_or_fail(
        _deliver(
            local_settings(),
            group=group,
            metrics_address=(metrics_host, metrics_port) if metrics_port else None,
        )
    )


async def _deliver(
    settings: Settings, *, group: str, metrics_address: tuple[str, int] | None
) -> None:
    from roadwatch.bootstrap.deliverer import started_deliverer
    from roadwatch.runtime.health_server import serving_health
    from roadwatch.webhooks.deliverer import stop_grace

    stop = stop_on_signals(grace=stop_grace(settings.webhook_timeout))
    registry = CollectorRegistry()
    async with started_deliverer(settings, stop=stop, group_id=group, registry=registry) as run:
        probes = {
            "broker": run.ping_broker,
            "store": run.ping_store,
            "progress": run.check_progress,
        }
        async with serving_health(metrics_address, registry=registry, probes=probes):
            log.info("delivering %s to webhooks (group %s)", settings.alerts_topic, group)
            await run.run()
    log.info("stopped")
