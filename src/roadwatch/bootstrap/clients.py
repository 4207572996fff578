"""What more than one process builds: Kafka's clients, the webhooks' target policy, and the
wait for a dependency at start-up."""

import asyncio
from collections.abc import Awaitable, Callable

from roadwatch.errors import RoadwatchError
from roadwatch.kafka.check import check_kafka
from roadwatch.kafka.clients import kafka_options
from roadwatch.kafka.producer import Producer
from roadwatch.kafka.reader import consumer
from roadwatch.kafka.sequence_renewal import install as renew_numbering_after_a_loss
from roadwatch.kafka.transaction_retries import install as retry_concurrent_transactions_sooner
from roadwatch.kafka.types import AIOKafkaConsumer, AIOKafkaProducer
from roadwatch.runtime.retry import retry_until_done
from roadwatch.settings import Settings
from roadwatch.webhooks.targets import TargetPolicy, parse_networks


def kafka_producer(
    settings: Settings,
    *,
    linger_ms: int = 5,
    transactional_id: str | None = None,
    max_batch_size: int = 16 * 1024,
) -> AIOKafkaProducer:
    if transactional_id is not None:
        retry_concurrent_transactions_sooner()
    renew_numbering_after_a_loss()
    return Producer(
        **kafka_options(settings),
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        transactional_id=transactional_id,
        max_batch_size=max_batch_size,
    )


def rules_consumer(settings: Settings) -> AIOKafkaConsumer:
    """A reader of every partition of the watchlists topic, in no group."""
    return consumer(
        settings.watchlists_topic,
        **kafka_options(settings),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )


class DependencyUnavailable(RoadwatchError):
    """A database or the broker did not answer within the time allowed at start-up."""


async def open_within(seconds: float, what: str, step: Callable[[], Awaitable[object]]) -> None:
    # Waits out a dependency that is still starting, but not for ever: a process that
    # cannot start says so and exits, and its supervisor decides what next.
    try:
        async with asyncio.timeout(seconds):
            await retry_until_done(step, what=what, stop=asyncio.Event())
    except TimeoutError:
        raise DependencyUnavailable(f"{what}: no success within {seconds:.0f} s") from None


async def kafka_checked(settings: Settings, *, topics: list[str], patience: float) -> None:
    """Return once Kafka answers and shows `topics`; a refusal (TLS, credentials, an ACL) is
    raised at once, as KafkaRefused, and a broker away for `patience` s as
    DependencyUnavailable."""
    await open_within(patience, "checking Kafka", lambda: check_kafka(settings, topics=topics))


def target_policy(settings: Settings) -> TargetPolicy:
    """Where webhooks may point: one rule for the API, which checks a target when it is
    registered, and for the deliverer, which checks it again when it sends."""
    return TargetPolicy(parse_networks(settings.webhook_allowed_networks))
