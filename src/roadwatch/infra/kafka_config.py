"""The local Kafka broker's configuration files."""

from pathlib import Path

from roadwatch.infra.certificates import local_tls
from roadwatch.infra.config import InfraConfig
from roadwatch.infra.kafka_access import SCRAM_MECHANISM

# The broker's own lines go to standard output, which the launcher sends to kafka.log.
LOG4J_CONFIG = """\
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = [%d] %p %m (%c)%n
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
logger.clients.name = org.apache.kafka
logger.clients.level = WARN
"""


def replicas(nodes: int) -> int:
    """How many copies a cluster of `nodes` keeps of each partition."""
    return min(nodes, 3)


def min_in_sync(nodes: int) -> int:
    """How many copies must have a write before it is acknowledged (acks=all): with 3, one
    broker may be down and nothing acknowledged is lost."""
    return 2 if replicas(nodes) >= 3 else 1


def server_properties(
    config: InfraConfig, *, node: int, nodes: int, log_dir: Path, super_user: str
) -> str:
    """Node `node` of `nodes`: a broker and a controller, one voter of the quorum."""
    host = config.host
    port, controller, secured = config.kafka_ports(node)
    voters = ",".join(f"{n}@{host}:{config.kafka_ports(n)[1]}" for n in range(1, nodes + 1))
    tls = local_tls(config.tls_dir, host=host)
    scram = SCRAM_MECHANISM.lower()
    copies, in_sync = replicas(nodes), min_in_sync(nodes)
    return "\n".join(
        [
            "process.roles=broker,controller",
            f"node.id={node}",
            f"controller.quorum.voters={voters}",
            f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller},"
            f"SASL_SSL://{host}:{secured}",
            f"advertised.listeners=PLAINTEXT://{host}:{port},SASL_SSL://{host}:{secured}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map="
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL",
            "inter.broker.listener.name=PLAINTEXT",
            # The secured listener: TLS with the local authority's certificate, SCRAM
            # users, and ACLs. The loopback listeners' anonymous user may do anything.
            f"listener.name.sasl_ssl.sasl.enabled.mechanisms={SCRAM_MECHANISM}",
            f"listener.name.sasl_ssl.{scram}.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            "listener.name.sasl_ssl.ssl.keystore.type=PEM",
            f"listener.name.sasl_ssl.ssl.keystore.location={tls.key_and_certificate}",
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            f"super.users=User:ANONYMOUS;User:{super_user}",
            f"log.dirs={log_dir}",
            "auto.create.topics.enable=false",
            "num.partitions=1",
            f"default.replication.factor={copies}",
            f"min.insync.replicas={in_sync}",
            f"offsets.topic.replication.factor={copies}",
            "offsets.topic.num.partitions=6",
            f"transaction.state.log.replication.factor={copies}",
            f"transaction.state.log.min.isr={in_sync}",
            "transaction.state.log.num.partitions=6",
            f"share.coordinator.state.topic.replication.factor={copies}",
            f"share.coordinator.state.topic.min.isr={in_sync}",
            "group.initial.rebalance.delay.ms=0",
            "",
        ]
    )
