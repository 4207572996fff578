"""A broker of a test's own, on free ports, for a test that stops it and starts it again."""

from pathlib import Path

from roadwatch.infra.config import InfraConfig
from roadwatch.infra.kafka import KafkaService
from roadwatch.kafka.topics import roadwatch_topics
from roadwatch.settings import Settings
from tests.helpers.ports import free_port


def own_broker(settings: Settings, home: Path, *, prefix: str) -> tuple[KafkaService, Settings]:
    """The broker, not started yet, and `settings` pointed at it, its topics named
    `prefix`.detections and so on; `home` holds its state."""
    config = InfraConfig(
        home=home,
        kafka_port=free_port(),
        kafka_controller_port=free_port(),
        kafka_secured_port=free_port(),
    )
    settings = settings.model_copy(
        update={
            "kafka_broker_url": f"127.0.0.1:{config.kafka_port}",
            "detections_topic": f"{prefix}.detections",
            "alerts_topic": f"{prefix}.alerts",
            "dead_letter_topic": f"{prefix}.dlq",
            "watchlists_topic": f"{prefix}.watchlists",
        }
    )
    return KafkaService(config, topics=roadwatch_topics(settings)), settings
