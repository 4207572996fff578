"""Kafka's authorization errors, named for an operator; every other error left alone."""

from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)

from roadwatch.errors import ConfigurationError
from roadwatch.kafka.check import refusal


def test_a_refused_topic_or_group_is_named_with_where_to_grant_it() -> None:
    for error, name in (
        (TopicAuthorizationFailedError("intellisite.alerts"), "intellisite.alerts"),
        (GroupAuthorizationFailedError("roadwatch-indexer"), "roadwatch-indexer"),
    ):
        refused = refusal(error, user="roadwatch-indexer")
        assert isinstance(refused, ConfigurationError)
        assert "the user roadwatch-indexer" in str(refused)
        assert name in str(refused)
        assert "docs/deploying.md" in str(refused)


def test_a_producer_allowed_to_write_nowhere_is_told_what_it_lacks() -> None:
    refused = refusal(ClusterAuthorizationFailedError())
    assert refused is not None
    assert "Write on at least one topic" in str(refused)


def test_an_outage_is_not_a_refusal() -> None:
    assert refusal(KafkaConnectionError("Unable to bootstrap")) is None
    assert refusal(TimeoutError()) is None
