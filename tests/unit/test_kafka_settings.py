"""The Kafka security settings, as Kafka's own clients name them, and the secrets read from
files (`<NAME>_FILE`)."""

import ssl
from pathlib import Path

import pytest

from roadwatch.errors import ConfigurationError
from roadwatch.infra.certificates import local_tls
from roadwatch.kafka.clients import kafka_options
from roadwatch.settings import load_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No roadwatch setting in the environment, and a state directory with no infra.env."""
    for name in (
        "KAFKA_SECURITY_PROTOCOL",
        "KAFKA_SASL_MECHANISM",
        "KAFKA_SASL_USERNAME",
        "KAFKA_SASL_PASSWORD",
        "KAFKA_SASL_PASSWORD_FILE",
        "KAFKA_SSL_CA_FILE",
        "KAFKA_SSL_CERT_FILE",
        "KAFKA_SSL_KEY_FILE",
        "JWT_SECRET",
        "JWT_SECRET_FILE",
        "KAFKA_BROKER_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_plain_text_is_the_default_and_needs_nothing(clean_env: Path) -> None:
    options = kafka_options(load_settings(clean_env))
    assert options == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}


def test_sasl_ssl_with_a_password_file_gives_every_client_tls_and_scram(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tls = local_tls(clean_env / "tls", host="127.0.0.1")
    secret = clean_env / "password"
    secret.write_text("s3cret with spaces\n")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "sasl_ssl")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "scram-sha-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "indexer")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("KAFKA_SSL_CA_FILE", str(tls.ca))
    options = kafka_options(load_settings(clean_env))
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "indexer"
    # The file's last line break is not part of the password; its spaces are.
    assert options["sasl_plain_password"] == "s3cret with spaces"
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "roadwatch local CA"),),)
    ]


@pytest.mark.parametrize(
    ("environment", "says"),
    [
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
            "needs KAFKA_SASL_MECHANISM, KAFKA_SASL_USERNAME",
        ),
        ({"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SASL_MECHANISM": "PLAIN"}, "uses no SASL"),
        ({"KAFKA_SSL_CA_FILE": "/etc/ssl/ca.pem"}, "uses no TLS"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERT_FILE": "/a.pem"},
            "go together",
        ),
        ({"KAFKA_SECURITY_PROTOCOL": "TLS"}, "KAFKA_SECURITY_PROTOCOL: Input should be"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI"},
            "KAFKA_SASL_MECHANISM: Input should be",
        ),
        ({"KAFKA_SASL_PASSWORD_FILE": "/no/such/file"}, "cannot read /no/such/file"),
        ({"KAFKA_BROKER_URL": ""}, "KAFKA_BROKER_URL must list host:port pairs"),
        ({"KAFKA_BROKER_URL": "kafka-1:9092,kafka-2"}, "KAFKA_BROKER_URL must list host:port"),
        ({"DETECTIONS_DB_URL": "postgresq://me:hunter2@db/x"}, "not postgresq"),
        (
            {"KAFKA_SASL_PASSWORD": "a", "KAFKA_SASL_PASSWORD_FILE": "/etc/hostname"},
            "not both",
        ),
    ],
)
def test_incomplete_or_contradictory_settings_are_refused_in_one_line(
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    environment: dict[str, str],
    says: str,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError) as refused:
        load_settings(clean_env)
    assert says in str(refused.value)
    assert "\n" not in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_an_unreadable_authority_file_is_named(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    not_pem = clean_env / "ca.pem"
    not_pem.write_text("not a certificate")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_CA_FILE", str(not_pem))
    with pytest.raises(ConfigurationError, match=r"KAFKA_SSL_CA_FILE .*ca\.pem"):
        kafka_options(load_settings(clean_env))


def test_any_setting_can_come_from_a_file_as_containers_receive_secrets(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = clean_env / "jwt"
    secret.write_text("x" * 48 + "\n")
    monkeypatch.setenv("JWT_SECRET_FILE", str(secret))
    settings = load_settings(clean_env)
    assert settings.jwt_secret is not None
    assert settings.jwt_secret.get_secret_value() == "x" * 48


def test_a_huge_file_is_refused_rather_than_read(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = clean_env / "huge"
    huge.write_bytes(b"x" * (1024 * 1024))
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(huge))
    with pytest.raises(ConfigurationError, match="larger than 64 KiB"):
        load_settings(clean_env)
