"""The detection store a URL names, chosen by its scheme (store_backends.py)."""

import importlib

from roadwatch.store_backends import backend_for
from roadwatch.stores.detection_store import DetectionStore


def detection_store(url: str, *, query_timeout: float | None = None) -> DetectionStore:
    """The store the URL's scheme names; with `query_timeout`, no query runs longer. Its
    module, and its database's client, are imported only now."""
    module, name = backend_for(url).store.split(":")
    store: DetectionStore = getattr(importlib.import_module(module), name)(
        url, query_timeout=query_timeout
    )
    return store
