"""The detection store a URL names, chosen by its scheme."""

from roadwatch.errors import ConfigurationError
from roadwatch.stores.detection_store import DetectionStore
from roadwatch.stores.mongo import MongoDetectionStore
from roadwatch.stores.postgres import PostgresDetectionStore


def detection_store(url: str, *, query_timeout: float | None = None) -> DetectionStore:
    """The store named by the URL's scheme; with `query_timeout`, no query runs longer."""
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresDetectionStore(url, query_timeout=query_timeout)
    if url.startswith("mongodb://"):
        return MongoDetectionStore(url, query_timeout=query_timeout)
    raise ConfigurationError(f"no detection store for {url.split('://', 1)[0]}:// URLs")
