import asyncio
import logging
from typing import Annotated

import typer

from roadwatch.bootstrap import INDEXER_GROUP, started_indexer
from roadwatch.cli.common import settings as load_settings
from roadwatch.settings import Settings
from roadwatch.shutdown import stop_on_signals

log = logging.getLogger("roadwatch.indexer")

Group = Annotated[str, typer.Option(help="Kafka consumer group; indexers in one group share.")]
MaxBatch = Annotated[int, typer.Option(min=1, help="The most records handled as one batch.")]


def indexer(group: Group = INDEXER_GROUP, max_batch: MaxBatch = 5000) -> None:
    """Consume DETECTIONS_TOPIC, store every detection, publish alerts, until stopped."""
    asyncio.run(_index(load_settings(), group=group, max_batch=max_batch))


async def _index(settings: Settings, *, group: str, max_batch: int) -> None:
    stop = stop_on_signals()
    store = settings.detections_db_url.split("://", 1)[0]
    async with started_indexer(settings, stop=stop, group_id=group, max_batch=max_batch) as indexer:
        log.info("indexing %s into %s (group %s)", settings.detections_topic, store, group)
        await indexer.run(stop)
    log.info("stopped")
