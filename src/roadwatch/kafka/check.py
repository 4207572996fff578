"""Whether Kafka can be worked with, checked before a process starts, and what is wrong if
not, named in one line: DNS, TCP, TLS, authentication, or a topic missing or not allowed.

aiokafka's clients say only "Unable to bootstrap" for all of these, and retry for ever.
"""

import asyncio
import socket
import ssl
from collections.abc import Sequence

from aiokafka.client import AIOKafkaClient
from aiokafka.conn import create_conn
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnsupportedSaslMechanismError,
)

from roadwatch.errors import ConfigurationError, RoadwatchError
from roadwatch.kafka.clients import kafka_options
from roadwatch.settings import Settings

# What the cluster answers when an ACL is missing: it does not pass with time.
AUTHORIZATION_ERRORS = (
    TopicAuthorizationFailedError,
    GroupAuthorizationFailedError,
    ClusterAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)
ACL_HINT = "grant the ACLs in docs/deploying.md"
# A topic created a moment ago reaches the brokers' metadata a moment later: it is looked
# for this long before it is called missing.
TOPIC_METADATA_LAG = 5.0
# A broker going down takes a connection and closes it mid-handshake, as a listener of another
# protocol does: the handshake is tried this many times, this far apart, before the closing
# is called a refusal. A broker gone down meanwhile refuses TCP, which may pass.
HANDSHAKE_TRIES = 3
HANDSHAKE_PAUSE = 1.0


class KafkaUnreachable(RoadwatchError):
    """No broker could be reached (DNS, TCP): it may pass, as an outage does."""


class KafkaRefused(ConfigurationError):
    """The cluster refused this client (TLS, authentication, an ACL, a missing topic): it
    will not pass until the settings or the cluster change."""


def refusal(error: BaseException, *, user: str | None = None) -> KafkaRefused | None:
    """The refusal that `error` is, named for an operator, if it is one."""
    if isinstance(error, ClusterAuthorizationFailedError):
        # What an idempotent producer meets first when its user may write nowhere.
        return KafkaRefused(
            f"Kafka refused {_who(user)}: ClusterAuthorization (a producer needs Write on at "
            f"least one topic, or IdempotentWrite on the cluster): {ACL_HINT}"
        )
    if isinstance(error, AUTHORIZATION_ERRORS):
        kind = type(error).__name__.removesuffix("Error").removesuffix("Failed")
        return KafkaRefused(f"Kafka refused {_who(user)}: {kind} ({error}): {ACL_HINT}")
    return None


async def check_kafka(settings: Settings, *, topics: Sequence[str], within: float = 10.0) -> None:
    """Return if a broker answers, accepts these credentials and shows every topic of
    `topics` to this user; KafkaRefused or KafkaUnreachable otherwise."""
    options = kafka_options(settings)
    user = settings.kafka_sasl_username
    servers = [s.strip() for s in settings.kafka_broker_url.split(",") if s.strip()]
    unreachable: list[str] = []
    for server in servers:
        try:
            await _connect(server, options, user=user, within=within)
            break
        except KafkaUnreachable as error:
            unreachable.append(str(error))
    else:
        raise KafkaUnreachable("; ".join(unreachable))
    await _check_topics(options, topics, user=user, within=within)


async def _connect(
    server: str, options: dict[str, object], *, user: str | None, within: float
) -> None:
    host, _, port_text = server.rpartition(":")
    host = host.strip("[]")
    where = f"Kafka at {server}"
    if not host or not port_text.isdigit():
        raise KafkaRefused(f"{where}: KAFKA_BROKER_URL must list host:port pairs")
    port = int(port_text)
    try:
        await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise KafkaUnreachable(f"{where}: DNS: cannot resolve {host} ({error.strerror})") from None
    for attempt in range(1, HANDSHAKE_TRIES + 1):
        await _tcp(host, port, where=where, within=within)
        try:
            await _handshake(host, port, options, where=where, user=user, within=within)
            return
        except _HandshakeFailed as failed:
            if attempt == HANDSHAKE_TRIES:
                raise KafkaRefused(str(failed)) from None
            await asyncio.sleep(HANDSHAKE_PAUSE)


class _HandshakeFailed(RoadwatchError):
    """The broker took the connection and closed it, or answered what no Kafka listener of
    this protocol would: a listener of another protocol, or a broker going down."""


async def _tcp(host: str, port: int, *, where: str, within: float) -> None:
    try:
        async with asyncio.timeout(within):
            _, writer = await asyncio.open_connection(host, port)
        writer.close()
    except TimeoutError:
        raise KafkaUnreachable(f"{where}: TCP: no answer within {within:.0f} s") from None
    except OSError as error:
        raise KafkaUnreachable(f"{where}: TCP: {error.strerror or error}") from None


async def _handshake(
    host: str,
    port: int,
    options: dict[str, object],
    *,
    where: str,
    user: str | None,
    within: float,
) -> None:
    security = {k: v for k, v in options.items() if k != "bootstrap_servers"}
    protocol = options["security_protocol"]
    try:
        async with asyncio.timeout(within):
            connection = await create_conn(host, port, **security)
    except ssl.SSLCertVerificationError as error:
        raise KafkaRefused(
            f"{where}: TLS: the broker's certificate is not trusted ({error.verify_message}): "
            "set KAFKA_SSL_CA_FILE to the authority that signed it"
        ) from None
    except ssl.SSLError as error:
        raise KafkaRefused(
            f"{where}: TLS: {error.reason or error}: does the listener speak {protocol}?"
        ) from None
    except SaslAuthenticationFailed:
        raise KafkaRefused(
            f"{where}: authentication: {_who(user)} was refused with "
            f"{options.get('sasl_mechanism')}: check KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
        ) from None
    except UnsupportedSaslMechanismError:
        raise KafkaRefused(
            f"{where}: authentication: the broker does not offer "
            f"{options.get('sasl_mechanism')}: check KAFKA_SASL_MECHANISM"
        ) from None
    except TimeoutError:
        # A broker too busy to answer (starting, or in a long pause) may yet answer.
        raise KafkaUnreachable(
            f"{where}: no answer to the handshake within {within:.0f} s"
        ) from None
    except (OSError, KafkaError) as error:
        # TCP answered just now: the handshake itself failed.
        raise _HandshakeFailed(
            f"{where}: the handshake failed ({type(error).__name__}: {error}): does the "
            f"listener speak {protocol}, as KAFKA_SECURITY_PROTOCOL says?"
        ) from None
    connection.close()


async def _check_topics(
    options: dict[str, object], topics: Sequence[str], *, user: str | None, within: float
) -> None:
    client = AIOKafkaClient(**options, request_timeout_ms=int(within * 1000))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(TOPIC_METADATA_LAG, within)
        try:
            await client.bootstrap()
            while True:
                cluster = await client.fetch_all_metadata()
                # A cluster with ACLs lists only the topics this user may describe.
                missing = sorted(set(topics) - cluster.topics())
                if not missing or loop.time() >= deadline:
                    break
                await asyncio.sleep(0.25)
        except KafkaError as error:
            raise KafkaUnreachable(
                f"Kafka at {options['bootstrap_servers']}: no metadata ({error}): is "
                "KAFKA_SECURITY_PROTOCOL right?"
            ) from None
        if missing:
            raise KafkaRefused(
                f"Kafka: {_who(user)} sees no topic {', '.join(missing)}: create it with "
                f"`roadwatch topics`, or {ACL_HINT}"
            )
    finally:
        await client.close()


def _who(user: str | None) -> str:
    return f"the user {user}" if user else "this client"
