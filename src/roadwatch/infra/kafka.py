import asyncio
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path
from typing import ClassVar

from roadwatch.infra.certificates import local_tls
from roadwatch.infra.config import InfraConfig
from roadwatch.infra.errors import InfraError
from roadwatch.infra.kafka_access import SCRAM_MECHANISM, KafkaAccess
from roadwatch.infra.kafka_cluster import brokers_joined, cluster_id_for
from roadwatch.infra.kafka_config import LOG4J_CONFIG, min_in_sync, replicas, server_properties
from roadwatch.infra.service import Service
from roadwatch.infra.tools import find_program, run_logged
from roadwatch.kafka import reader
from roadwatch.kafka.acls import Grant
from roadwatch.kafka.topics import TopicSpec, create_missing_topics
from roadwatch.kafka.types import AIOKafkaAdminClient, AIOKafkaProducer, TopicPartition
from roadwatch.runtime.lifecycle import started

KAFKA_VERSION = "4.1.1"
PROBE_TOPIC = "roadwatch.infra.probe"
# May do anything through the secured listener, as anyone may through the loopback one.
ADMIN_USER = "roadwatch-admin"


class KafkaService(Service):
    """One node of a local Apache Kafka in KRaft mode, broker and controller in one process:
    the only one, or one of a cluster whose first node creates the topics and users."""

    kind: ClassVar[str] = "kafka"

    def __init__(
        self,
        config: InfraConfig,
        *,
        topics: list[TopicSpec],
        grants: Sequence[Grant] = (),
        node: int = 1,
        nodes: int = 1,
    ) -> None:
        super().__init__(config, name=self.kind if node == 1 else f"{self.kind}-{node}")
        self.topics = topics
        self.grants = grants
        self.node = node
        self.nodes = nodes

    @property
    def ports(self) -> list[int]:
        return list(self.config.kafka_ports(self.node))

    @property
    def bootstrap(self) -> str:
        """Every node's plaintext address: what clients are given."""
        return self._every(0)

    @property
    def secured_port(self) -> int:
        return self.config.kafka_ports(self.node)[2]

    @property
    def secured_bootstrap(self) -> str:
        return self._every(2)

    def _every(self, listener: int) -> str:
        return ",".join(
            f"{self.config.host}:{self.config.kafka_ports(n)[listener]}"
            for n in range(1, self.nodes + 1)
        )

    def password(self, user: str) -> str:
        """The SCRAM password of a user of the secured listener."""
        return self._secret(self.password_file(user).name)

    def password_file(self, user: str) -> Path:
        return self.config.secret_file(f"kafka-{user}")

    def secured_settings(self, user: str) -> dict[str, str]:
        """The environment of a process that connects as `user` through the secured listener,
        checking the broker's certificate and name against the local authority."""
        self.password(user)
        return {
            "KAFKA_BROKER_URL": self.secured_bootstrap,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": SCRAM_MECHANISM,
            "KAFKA_SASL_USERNAME": user,
            "KAFKA_SASL_PASSWORD_FILE": str(self.password_file(user)),
            "KAFKA_SSL_CA_FILE": str(local_tls(self.config.tls_dir, host=self.config.host).ca),
        }

    def users(self) -> list[str]:
        """The users of the secured listener."""
        return sorted({ADMIN_USER, *(grant.user for grant in self.grants)})

    def access(self, *, class_archive: Path | None = None) -> KafkaAccess:
        """Adds users and ACLs to the running broker; its tools share their classes through
        `class_archive`, by default one beside the jars for each Java build."""
        java = self._java()
        return KafkaAccess(
            java=java,
            libs=self._libs,
            bootstrap=self.bootstrap,
            log=self.daemon.log_file,
            class_archive=class_archive or self._libs.parent / f"tools-{_build_of(java)}.jsa",
        )

    @property
    def _libs(self) -> Path:
        # Named by the jars' list too: a broker whose list grew fetches them again.
        pom = files("roadwatch.infra").joinpath("kafka-pom.xml").read_bytes()
        digest = hashlib.sha256(pom).hexdigest()[:8]
        return self.config.cache / f"kafka-{KAFKA_VERSION}-{digest}" / "libs"

    @property
    def _data(self) -> Path:
        return self.config.data_dir(self.name)

    def _java(self) -> str:
        hint = "Kafka needs Java 17 or newer (apt-get install openjdk-17-jre-headless)"
        java_home = os.environ.get("JAVA_HOME")
        if java_home:
            return find_program(self.name, "java", hint=hint, only_in=Path(java_home) / "bin")
        return find_program(self.name, "java", hint=hint)

    def _provision(self) -> None:
        java = self._java()
        if not self._libs.is_dir():
            self._download_jars()
        self._data.mkdir(parents=True, exist_ok=True)
        local_tls(self.config.tls_dir, host=self.config.host)
        (self._data / "server.properties").write_text(
            server_properties(
                self.config,
                node=self.node,
                nodes=self.nodes,
                log_dir=self._data / "log",
                super_user=ADMIN_USER,
            )
        )
        (self._data / "log4j2.properties").write_text(LOG4J_CONFIG)
        if not (self._data / "log" / "meta.properties").exists():
            cluster_id = cluster_id_for(self.config, nodes=self.nodes, node=self.node)
            run_logged(
                self.name,
                [
                    java,
                    "-cp",
                    f"{self._libs}/*",
                    "kafka.tools.StorageTool",
                    "format",
                    # A base64 id may begin with "-": joined to its flag, it is not read as one.
                    f"--cluster-id={cluster_id}",
                    "--config",
                    str(self._data / "server.properties"),
                ],
                what="formatting the broker's storage",
                log=self.daemon.log_file,
            )

    def _download_jars(self) -> None:
        mvn = find_program(
            self.name,
            "mvn",
            hint="the broker's jars are fetched with Maven (apt-get install maven)",
        )
        self._libs.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._libs.parent) as scratch:
            pom = Path(scratch) / "pom.xml"
            pom.write_bytes(files("roadwatch.infra").joinpath("kafka-pom.xml").read_bytes())
            run_logged(
                self.name,
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(pom),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={scratch}/libs",
                    "-DincludeScope=runtime",
                ],
                what=f"downloading Kafka {KAFKA_VERSION} from Maven Central",
                log=self.daemon.log_file,
            )
            shutil.move(f"{scratch}/libs", self._libs)

    def _command(self) -> list[str]:
        heap = f"{self.config.kafka_heap_mb}m"
        return [
            self._java(),
            f"-Xmx{heap}",
            f"-Xms{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self._data / 'log4j2.properties'}",
            "-cp",
            f"{self._libs}/*",
            "kafka.Kafka",
            str(self._data / "server.properties"),
        ]

    async def _probe(self) -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.address, request_timeout_ms=5000)
        await admin.start()
        try:
            await admin.list_topics()
        finally:
            await admin.close()

    async def _configure(self) -> None:
        if self.node != 1:
            return
        await brokers_joined(self.bootstrap, self.nodes, service=self.name)
        in_sync = {"min.insync.replicas": str(min_in_sync(self.nodes))}
        await create_missing_topics(
            {"bootstrap_servers": self.bootstrap},
            [
                TopicSpec(spec.name, spec.partitions, {**in_sync, **spec.config})
                for spec in [*self.topics, TopicSpec(PROBE_TOPIC, 1)]
            ],
            replication_factor=replicas(self.nodes),
        )
        await self._round_trip()
        await self._secure()

    async def _secure(self) -> None:
        """The secured listener's users and their ACLs, unless already as wanted: each
        change takes a JVM of Kafka's tools, seconds apiece."""
        if not self.grants:
            return
        users = self.users()
        passwords = {user: self.password(user) for user in users}
        wanted = json.dumps(
            {"passwords": passwords, "grants": [repr(grant) for grant in self.grants]}
        )
        marker = self._data / "access.sha256"
        digest = hashlib.sha256(wanted.encode()).hexdigest()
        if marker.exists() and marker.read_text() == digest:
            return
        access = self.access()
        await access.add_users(passwords)
        await access.grant(self.grants)
        marker.write_text(digest)

    async def _round_trip(self) -> None:
        """Produce a message and read it back, which proves the broker does real work."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        consumer = reader.consumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await started(producer)
        try:
            await started(consumer)
        except BaseException:
            await producer.stop()
            raise
        try:
            token = uuid.uuid4().bytes
            sent = await producer.send_and_wait(PROBE_TOPIC, token, partition=0)
            partition = TopicPartition(PROBE_TOPIC, 0)
            consumer.assign([partition])
            consumer.seek(partition, sent.offset)
            received = await asyncio.wait_for(consumer.getone(), timeout=15)
            if received.value != token:
                raise InfraError(self.name, "the probe message read back differs from the one sent")
        finally:
            await consumer.stop()
            await producer.stop()

    def connection_settings(self) -> dict[str, str]:
        return {"KAFKA_BROKER_URL": self.bootstrap} if self.node == 1 else {}


def _build_of(java: str) -> str:
    """A short name for this Java build: its binary's place and time of change."""
    binary = Path(java).resolve()
    return hashlib.sha256(f"{binary}:{binary.stat().st_mtime_ns}".encode()).hexdigest()[:8]
