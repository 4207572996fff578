from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from roadwatch.errors import ConfigurationError
from roadwatch.settings_files import FileVariables
from roadwatch.store_backends import UnknownBackend, backend_for
from roadwatch.text import UnsafeText, normalise

INFRA_ENV_FILE = "infra.env"


class Settings(BaseSettings):
    """Everything roadwatch reads from its environment, with the challenge's variable names.

    Values come from the process environment first, then from the `infra.env` file that
    `roadwatch infra up` writes into the state directory, then from these defaults.
    """

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    environment: Literal["development", "production"] = "development"
    kafka_broker_url: str = "127.0.0.1:9092"
    # As Kafka's own clients name them, so that a provider's snippet can be copied.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # PEM files: the authority the brokers' certificates are checked against (the system's
    # when unset), and this client's certificate and key where the brokers ask for one.
    kafka_ssl_ca_file: Path | None = None
    kafka_ssl_cert_file: Path | None = None
    kafka_ssl_key_file: Path | None = None
    detections_topic: str = "intellisite.detections"
    alerts_topic: str = "intellisite.alerts"
    dead_letter_topic: str = "intellisite.detections.dlq"
    # Compacted: every watchlist rule, keyed by its id.
    watchlists_topic: str = "intellisite.watchlists"
    # Webhook deliveries given up, with the reason.
    webhooks_dead_letter_topic: str = "intellisite.webhooks.dlq"
    suspicious_vehicle: str = "SUV"
    # A batch's alerts and dead letters are published and its offsets committed in one Kafka
    # transaction, so readers see each once whatever crashes (indexer/transactions.py).
    # False: at least once, for a cluster that refuses transactions.
    alerts_exactly_once: bool = True
    detections_per_second: float = Field(default=10.0, gt=0)
    detections_db_url: str = "postgresql://roadwatch@127.0.0.1:5433/roadwatch"
    # Days a detection is kept (and its alert, and its counts over time); unset keeps all.
    detections_retention_days: int | None = Field(default=None, ge=1, le=36_500)
    # How many days back a detection's time may be for the store to take it (older ones are
    # dead-lettered as too_old), whatever the retention; unset takes any since 2000.
    detections_accept_days: float | None = Field(default=7.0, gt=0, le=36_500)
    # How many days ahead of the indexer's clock a detection's time may be (later ones are
    # dead-lettered as too_new); at most 30, beyond which any time is invalid.
    detections_accept_ahead_days: float = Field(default=1.0, gt=0, le=30)
    users_db_url: str = "postgresql://roadwatch@127.0.0.1:5433/roadwatch"
    # The tables' owner, for `roadwatch migrate` (the database of the PostgreSQL URLs above);
    # the indexer and the API connect with the URLs above, as a role that may not alter them.
    migrations_db_url: str | None = None
    jwt_secret: SecretStr | None = None
    # The one-time token that creating the first user through the API takes. `roadwatch api`
    # (and `up`) make one when none is set, and print the link that carries it.
    setup_token: SecretStr | None = None
    # Addresses (or CIDR ranges) of the reverse proxies whose X-Forwarded-For is believed.
    trusted_proxies: str = ""
    # Where the login throttle keeps its counters: a `limits` async storage URI.
    login_throttle_storage: str = "async+memory://"
    # Login attempts one address may make (a `limits` rate): raise it for a large office
    # behind one address.
    login_attempts_per_address: str = "30/minute"
    # Login attempts one network (a /24 of IPv4, a /64 of IPv6) may make.
    login_attempts_per_network: str = "120/minute"
    # /alerts streams one user may hold open at once, per API process; and in all (none:
    # what the process's open-file limit leaves, less 256 for everything else).
    alert_streams_per_user: int = Field(default=10, ge=1)
    alert_streams_total: int | None = Field(default=None, ge=1)
    # The most recent alerts each API process keeps to resume /alerts streams from; a
    # client that missed more reads the rest from /alerts/history.
    alerts_resume_window: int = Field(default=10_000, ge=1)
    # How long the API lets any one database query run, in seconds.
    api_query_timeout: float = Field(default=3.0, gt=0)
    # Internal addresses (or CIDR ranges) webhooks may reach all the same: a receiver on
    # this network. Loopback, private, link-local and metadata addresses are refused otherwise.
    webhook_allowed_networks: str = ""
    # Per subscription: seconds a POST may take, and how many run at once.
    webhook_timeout: float = Field(default=10.0, gt=0, le=60)
    webhook_concurrency: int = Field(default=4, ge=1, le=64)
    # Retries: about `first` seconds after the first failure, doubling up to `longest`, until
    # `for` seconds after the alert (at least a day, by default).
    webhook_retry_first: float = Field(default=5.0, gt=0)
    webhook_retry_longest: float = Field(default=3600.0, gt=0)
    webhook_retry_for: float = Field(default=24 * 3600.0, gt=0)
    # After a rotation, how long the old secret still signs beside the new one.
    webhook_secret_overlap: float = Field(default=24 * 3600.0, ge=0)
    # Days of delivery attempts kept for GET /webhooks/{id}/deliveries.
    webhook_history_days: float = Field(default=7.0, gt=0)
    log_level: str = "INFO"
    log_format: Literal["console", "json"] = "console"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            FileVariables(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    def as_environment(self) -> dict[str, str]:
        """The environment variables that give another process these same settings."""
        environment = {}
        for name, value in self.model_dump().items():
            if value is None:
                # Said outright where the default is not none (DETECTIONS_ACCEPT_DAYS=none).
                if type(self).model_fields[name].default is not None:
                    environment[name.upper()] = "none"
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            environment[name.upper()] = str(value)
        return environment

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper_case(cls, value: object) -> object:
        # Kafka's own clients take these in any case.
        return value.upper() if isinstance(value, str) else value

    @field_validator("detections_accept_days", mode="before")
    @classmethod
    def _none_takes_any(cls, value: object) -> object:
        # Unset in the environment: empty, or `none`.
        if isinstance(value, str) and value.strip().lower() in {"", "none"}:
            return None
        return value

    @field_validator("suspicious_vehicle")
    @classmethod
    def _names_a_category(cls, value: str) -> str:
        try:
            named = normalise(value)
        except UnsafeText as unsafe:
            raise ValueError(f"SUSPICIOUS_VEHICLE {unsafe}") from None
        if not named.replace(",", "").strip():
            raise ValueError("SUSPICIOUS_VEHICLE must name at least one category, such as SUV")
        return value

    @model_validator(mode="after")
    def _kafka_security_complete(self) -> "Settings":
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_"):
            missing = [
                name.upper()
                for name in ("kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password")
                if getattr(self, name) is None
            ]
            if missing:
                raise ValueError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs {', '.join(missing)}")
        elif self.kafka_sasl_mechanism is not None:
            raise ValueError(
                f"KAFKA_SASL_MECHANISM is set but KAFKA_SECURITY_PROTOCOL={protocol} uses no SASL"
            )
        files = (self.kafka_ssl_ca_file, self.kafka_ssl_cert_file, self.kafka_ssl_key_file)
        if not protocol.endswith("SSL") and any(files):
            raise ValueError(
                f"KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL={protocol} uses no TLS"
            )
        if (self.kafka_ssl_cert_file is None) != (self.kafka_ssl_key_file is None):
            raise ValueError("KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE go together")
        return self

    @field_validator("detections_db_url")
    @classmethod
    def _known_store_scheme(cls, url: str) -> str:
        try:
            backend_for(url)
        except UnknownBackend as unknown:
            raise ValueError(f"DETECTIONS_DB_URL: {unknown}") from None
        return url

    @field_validator("kafka_broker_url")
    @classmethod
    def _lists_brokers(cls, value: str) -> str:
        servers = [server.strip() for server in value.split(",")]
        for server in servers:
            host, _, port = server.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError("KAFKA_BROKER_URL must list host:port pairs, comma-separated")
        return value


def load_settings(state_dir: Path) -> Settings:
    """Settings for a process started beside the local infrastructure kept in `state_dir`;
    ConfigurationError naming every setting that is wrong."""
    try:
        return Settings(_env_file=state_dir / INFRA_ENV_FILE)
    except ValidationError as invalid:
        raise ConfigurationError(_described(invalid)) from None


def _described(invalid: ValidationError) -> str:
    problems = []
    for error in invalid.errors(include_url=False, include_input=False):
        where = ".".join(str(part) for part in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {message}" if where else message)
    return "invalid settings: " + "; ".join(problems)
