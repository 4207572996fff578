"""The detection store backends, known by the scheme of their URL.

Every place that decides by a store's URL asks here: the settings (which URLs they accept),
bootstrap (which store to build), `roadwatch migrate` (whether there is a schema to bring
up to date) and `roadwatch up` (how to check the server). It imports nothing of the
stores: a backend's module is imported only when its store is built, so a process loads
the client of its own database alone, and the settings can ask here without a circle.

A new backend is a module implementing DetectionStore, a line in BACKENDS, and a
`store_url` parameter of the contract suite (tests/conftest.py).
"""

from dataclasses import dataclass
from typing import Literal

from roadwatch.errors import ConfigurationError


@dataclass(frozen=True)
class Backend:
    name: str
    schemes: tuple[str, ...]
    # "module:Class", taking the URL and `query_timeout`.
    store: str
    # The wire protocol, by which `roadwatch up` checks the server.
    protocol: Literal["postgresql", "mongodb"]
    # Whether its schema is kept by Alembic migrations (`roadwatch migrate`).
    migrated: bool


BACKENDS = (
    Backend(
        "PostgreSQL",
        ("postgresql", "postgres"),
        "roadwatch.stores.postgres:PostgresDetectionStore",
        protocol="postgresql",
        migrated=True,
    ),
    Backend(
        "MongoDB",
        ("mongodb",),
        "roadwatch.stores.mongo:MongoDetectionStore",
        protocol="mongodb",
        migrated=False,
    ),
)


class UnknownBackend(ConfigurationError):
    pass


def backend_for(url: str) -> Backend:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    for backend in BACKENDS:
        if scheme in backend.schemes:
            return backend
    known = " or ".join(f"{b.schemes[0]}://" for b in BACKENDS)
    # Not the URL itself: it may hold a password.
    shown = f"{scheme[:20]}://" if scheme else "no scheme"
    raise UnknownBackend(f"a detection store's URL must start with {known}, not {shown}")
