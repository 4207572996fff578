"""Whether the servers the settings name answer, each failure in one line that names the
server and what failed: DNS, TCP, TLS, authentication, a missing database or topic."""

import asyncio
import socket
import ssl
from urllib.parse import urlsplit

import asyncpg
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure, PyMongoError

from roadwatch.errors import RoadwatchError
from roadwatch.kafka.check import check_kafka
from roadwatch.kafka.topics import roadwatch_topics
from roadwatch.settings import Settings
from roadwatch.store_backends import BACKENDS, backend_for

POSTGRESQL = BACKENDS[0]

WITHIN = 10.0


async def server_problems(settings: Settings) -> list[str]:
    """One line for each server that does not answer as the settings need, none if all do."""
    states = await server_states(settings)
    return [f"{name}: {problem}" for name, problem in states.items() if problem]


async def server_states(settings: Settings, *, within: float = WITHIN) -> dict[str, str | None]:
    """Each server the settings name, and what is wrong with it (None: nothing)."""
    checks = {"Kafka": _kafka(settings, within)}
    urls = {settings.users_db_url, settings.detections_db_url}
    for url in sorted(urls):
        # The users' URL is always PostgreSQL's; the detections' may be any backend's.
        backend = backend_for(url) if url == settings.detections_db_url else POSTGRESQL
        probe = _mongo if backend.protocol == "mongodb" else _postgres
        checks[f"{backend.name} at {_where(url)}"] = probe(url, within)
    found = await asyncio.gather(*checks.values())
    return dict(zip(checks, found, strict=True))


async def _kafka(settings: Settings, within: float) -> str | None:
    try:
        await check_kafka(
            settings, topics=[spec.name for spec in roadwatch_topics(settings)], within=within
        )
    except RoadwatchError as error:
        return str(error).removeprefix("Kafka: ")
    return None


async def _postgres(url: str, within: float) -> str | None:
    try:
        connection = await asyncpg.connect(url, timeout=within)
    except socket.gaierror as error:
        return f"DNS: cannot resolve {urlsplit(url).hostname} ({error.strerror})"
    except ssl.SSLCertVerificationError as error:
        return f"TLS: the server's certificate is not trusted ({error.verify_message})"
    except ssl.SSLError as error:
        return f"TLS: {error.reason or error}"
    except (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError) as e:
        return f"authentication: {e}"
    except asyncpg.InvalidCatalogNameError as error:
        return f"no such database: {error}"
    except asyncpg.PostgresError as error:
        return f"{type(error).__name__}: {error}"
    except (OSError, TimeoutError) as error:
        return f"TCP: {getattr(error, 'strerror', None) or error or 'no answer'}"
    await connection.close()
    return None


async def _mongo(url: str, within: float) -> str | None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        url, serverSelectionTimeoutMS=int(within * 1000), connect=False
    )
    try:
        await client.admin.command("ping")
    except OperationFailure as error:
        return f"authentication: {error}" if error.code == 18 else str(error)
    except PyMongoError as error:
        text = str(error).split(", Timeout:")[0]
        kind = "TLS" if "SSL" in text or "certificate" in text else "unreachable"
        return f"{kind}: {text}"
    finally:
        await client.close()
    return None


def _where(url: str) -> str:
    """host:port/database of a URL, without its credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or ''}{parts.path}"
