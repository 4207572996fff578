"""The Kafka client's types that the rest of roadwatch speaks in. Only this package imports
the client (aiokafka), so that the client's surface is known in one place."""

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    CommitFailedError,
    IllegalStateError,
    KafkaError,
    MessageSizeTooLargeError,
    ProducerFenced,
)
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import OffsetAndMetadata

from roadwatch.kafka.record import Record

__all__ = [
    "AIOKafkaAdminClient",
    "AIOKafkaConsumer",
    "AIOKafkaProducer",
    "BatchBuilder",
    "CommitFailedError",
    "ConsumerRebalanceListener",
    "IllegalStateError",
    "KafkaError",
    "MessageSizeTooLargeError",
    "OffsetAndMetadata",
    "ProducerFenced",
    "Record",
    "TopicPartition",
]
