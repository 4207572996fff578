import logging
import random
import sys
import time
from collections.abc import Callable
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from roadwatch.bootstrap.clients import DependencyUnavailable, kafka_checked, kafka_producer
from roadwatch.catalog.producer import DetectionProducer, ProducerStats
from roadwatch.catalog.vehicles import load_catalog
from roadwatch.cli.common import fail, local_settings, run
from roadwatch.errors import ConfigurationError
from roadwatch.settings import Settings
from roadwatch.shutdown import stop_on_signals

log = logging.getLogger("roadwatch.produce")
# Seconds between progress lines, when the output is not a terminal (under `roadwatch up`).
PROGRESS_EVERY = 5.0

Rate = Annotated[
    float | None,
    typer.Option(min=0.001, help="Detections per second [default: DETECTIONS_PER_SECOND]."),
]
Count = Annotated[
    int | None, typer.Option(min=0, help="Stop after this many [default: run until stopped].")
]
Seed = Annotated[int | None, typer.Option(help="Seed for a reproducible sequence.")]


def produce(rate: Rate = None, count: Count = None, seed: Seed = None) -> None:
    """Publish detections drawn from the vehicle catalog to DETECTIONS_TOPIC."""
    settings = local_settings()
    try:
        stats = run(
            _produce(settings, rate=rate or settings.detections_per_second, count=count, seed=seed)
        )
    except (ConfigurationError, DependencyUnavailable) as error:
        raise fail(error) from None
    if stats.failed:
        first = stats.errors[0] if stats.errors else "unknown error"
        print(f"roadwatch: produce: {stats.failed} not acknowledged: {first}", file=sys.stderr)
        raise typer.Exit(code=1)


async def _produce(
    settings: Settings, *, rate: float, count: int | None, seed: int | None
) -> ProducerStats:
    stop = stop_on_signals()
    await kafka_checked(settings, topics=[settings.detections_topic], patience=60)
    producer = kafka_producer(settings, linger_ms=20)
    await producer.start()
    try:
        source = DetectionProducer(
            producer,
            topic=settings.detections_topic,
            vehicles=load_catalog(),
            rng=random.Random(seed),
        )
        if not sys.stderr.isatty():
            progress_log = ProgressLog(PROGRESS_EVERY)
            stats = await source.run(rate=rate, count=count, stop=stop, on_progress=progress_log)
            progress_log.done(stats)
            return stats
        columns = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn()]
        with Progress(*columns, TimeElapsedColumn()) as progress:
            task = progress.add_task("starting", total=count)

            def show(stats: ProducerStats) -> None:
                progress.update(
                    task,
                    completed=stats.sent,
                    description=f"sent {stats.sent:,}, acknowledged {stats.acknowledged:,}",
                )

            return await source.run(rate=rate, count=count, stop=stop, on_progress=show)
    finally:
        await producer.stop()


class ProgressLog:
    """One line each `seconds` at most, however often it is told (the producer tells it at
    every step, hundreds of times a second), and one at the end."""

    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._seconds = seconds
        self._clock = clock
        self._last_time = clock()
        self._last_sent = 0

    def __call__(self, stats: ProducerStats) -> None:
        now = self._clock()
        if now - self._last_time < self._seconds:
            return
        rate = (stats.sent - self._last_sent) / (now - self._last_time)
        log.info(
            "sent %d detections (%.0f/s), %d acknowledged", stats.sent, rate, stats.acknowledged
        )
        self._last_time, self._last_sent = now, stats.sent

    def done(self, stats: ProducerStats) -> None:
        log.info(
            "done: sent %d detections, %d acknowledged, %d failed",
            stats.sent,
            stats.acknowledged,
            stats.failed,
        )
