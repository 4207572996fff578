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


def server_properties(
    config: InfraConfig, *, secured_port: int, log_dir: Path, super_user: str
) -> str:
    """The single-node broker's server.properties: a broker and its own controller."""
    host, port = config.host, config.kafka_port
    controller = config.kafka_controller_port
    secured = secured_port
    tls = local_tls(config.tls_dir, host=host)
    scram = SCRAM_MECHANISM.lower()
    return "\n".join(
        [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@{host}:{controller}",
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
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=6",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=6",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "",
        ]
    )
