"""How every roadwatch process reaches Kafka: the brokers, and the TLS and SASL to use."""

import ssl
from pathlib import Path
from typing import Any

from roadwatch.errors import ConfigurationError
from roadwatch.settings import Settings


def kafka_options(settings: Settings) -> dict[str, Any]:
    """The connection options of an aiokafka client (producer, consumer or admin)."""
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_broker_url,
        "security_protocol": protocol,
    }
    if protocol in {"SSL", "SASL_SSL"}:
        options["ssl_context"] = tls_context(
            ca=settings.kafka_ssl_ca_file,
            certificate=settings.kafka_ssl_cert_file,
            key=settings.kafka_ssl_key_file,
        )
    if protocol in {"SASL_PLAINTEXT", "SASL_SSL"}:
        assert settings.kafka_sasl_password is not None  # checked with the settings
        options |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    return options


def tls_context(
    *, ca: Path | None, certificate: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    """A client context that checks the server's certificate and name (against `ca`, or the
    system's authorities); with `certificate` and `key`, it presents them in turn."""
    try:
        context = ssl.create_default_context(cafile=str(ca) if ca else None)
    except (OSError, ssl.SSLError) as error:
        raise ConfigurationError(f"KAFKA_SSL_CA_FILE {ca}: {_reason(error)}") from None
    if certificate is not None and key is not None:
        try:
            context.load_cert_chain(str(certificate), str(key))
        except (OSError, ssl.SSLError) as error:
            raise ConfigurationError(
                f"KAFKA_SSL_CERT_FILE {certificate} with KAFKA_SSL_KEY_FILE {key}: {_reason(error)}"
            ) from None
    return context


def _reason(error: OSError | ssl.SSLError) -> str:
    if isinstance(error, ssl.SSLError):
        return f"not a usable PEM file ({error.reason or error})"
    return error.strerror or str(error)
