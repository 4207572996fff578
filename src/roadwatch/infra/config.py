from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# The local servers, in the order they start.
SERVICE_NAMES = ("postgres", "ferretdb", "kafka")


class InfraConfig(BaseSettings):
    """Where the local servers live and which loopback ports they take (`ROADWATCH_*`)."""

    model_config = SettingsConfigDict(env_prefix="ROADWATCH_", extra="ignore")

    home: Path = Path(".roadwatch")
    cache: Path = Path.home() / ".cache" / "roadwatch"
    host: str = "127.0.0.1"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    # The broker's second listener: SASL_SSL, SCRAM-SHA-512, with ACLs.
    kafka_secured_port: int = 9094
    kafka_heap_mb: int = 512
    # Kafka brokers run here: 1, or 3 for a cluster whose topics keep every partition on
    # each (min.insync.replicas 2). Node n takes the three ports above, each plus 3 (n - 1).
    # A state directory keeps the size it was first started with.
    kafka_brokers: int = Field(1, ge=1, le=5)
    postgres_port: int = 5433
    ferretdb_port: int = 27017
    ferretdb_debug_port: int = 27018
    # FerretDB's second listener: TLS.
    ferretdb_tls_port: int = 27019
    start_timeout_seconds: float = 90.0
    # False: `roadwatch up` starts no server, even those the settings name on this machine.
    provision: bool = True

    def model_post_init(self, context: object, /) -> None:
        self.home = self.home.resolve()
        self.cache = self.cache.expanduser().resolve()

    def kafka_ports(self, node: int) -> tuple[int, int, int]:
        """Node `node`'s (from 1) plaintext, controller and secured ports."""
        step = 3 * (node - 1)
        return (
            self.kafka_port + step,
            self.kafka_controller_port + step,
            self.kafka_secured_port + step,
        )

    def log_file(self, service: str) -> Path:
        return self.home / "logs" / f"{service}.log"

    def pid_file(self, service: str) -> Path:
        return self.home / "run" / f"{service}.pid"

    def data_dir(self, service: str) -> Path:
        return self.home / service

    def secret_file(self, name: str) -> Path:
        return self.home / "secrets" / name

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"
