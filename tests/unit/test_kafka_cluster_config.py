"""The local Kafka cluster's configuration: each node's ports and quorum, the copies kept,
and a state directory that keeps the size it was made with."""

import json
from pathlib import Path

from roadwatch.infra.config import InfraConfig
from roadwatch.infra.kafka_cluster import CLUSTER_FILE, cluster_size
from roadwatch.infra.kafka_config import server_properties


def properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_each_node_takes_its_own_ports_and_every_node_votes(tmp_path: Path) -> None:
    config = InfraConfig(home=tmp_path, kafka_port=9092, kafka_controller_port=9093)
    second = properties(
        server_properties(config, node=2, nodes=3, log_dir=tmp_path / "log", super_user="admin")
    )
    assert second["node.id"] == "2"
    assert second["controller.quorum.voters"] == (
        "1@127.0.0.1:9093,2@127.0.0.1:9096,3@127.0.0.1:9099"
    )
    assert second["listeners"].startswith("PLAINTEXT://127.0.0.1:9095,CONTROLLER://127.0.0.1:9096")
    for copies in ("default.replication.factor", "offsets.topic.replication.factor"):
        assert second[copies] == "3"
    assert second["min.insync.replicas"] == "2"
    assert second["transaction.state.log.min.isr"] == "2"


def test_a_single_broker_keeps_one_copy(tmp_path: Path) -> None:
    only = properties(
        server_properties(
            InfraConfig(home=tmp_path), node=1, nodes=1, log_dir=tmp_path, super_user="admin"
        )
    )
    assert only["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert (only["default.replication.factor"], only["min.insync.replicas"]) == ("1", "1")


def test_a_state_directory_keeps_its_first_size_and_says_so_when_asked_another(
    tmp_path: Path,
) -> None:
    assert cluster_size(InfraConfig(home=tmp_path, kafka_brokers=3)) == (3, None)
    first = tmp_path / "kafka"
    first.mkdir()
    (first / CLUSTER_FILE).write_text(json.dumps({"id": "x", "nodes": 3}))
    # Not asked: it is what it was made; asked otherwise: a clear error.
    assert cluster_size(InfraConfig(home=tmp_path)) == (3, None)
    size, problem = cluster_size(InfraConfig(home=tmp_path, kafka_brokers=1))
    assert size == 3
    assert problem is not None
    assert "holds a Kafka of 3 broker(s)" in problem
    # A single broker formatted before clusters were known is one of one.
    older = tmp_path / "older"
    (older / "kafka" / "log").mkdir(parents=True)
    (older / "kafka" / "log" / "meta.properties").write_text("node.id=1\n")
    assert cluster_size(InfraConfig(home=older)) == (1, None)
