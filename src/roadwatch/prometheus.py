"""Serving a Prometheus registry at exactly /metrics (a mounted app would redirect to /metrics/)."""

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

# Set for processes that share a port (`roadwatch api --workers N`): each writes its metrics
# to files there, prometheus_client's multiprocess mode, and /metrics sums them all.
MULTIPROCESS_FOLDER = "PROMETHEUS_MULTIPROC_DIR"


def served_registry(own: CollectorRegistry) -> CollectorRegistry:
    """What /metrics serves: this process's own registry, or the sum over every process
    that shares the port."""
    if MULTIPROCESS_FOLDER not in os.environ:
        return own
    combined = CollectorRegistry()
    MultiProcessCollector(combined)  # type: ignore[no-untyped-call]
    return combined


def metrics_route(registry: CollectorRegistry) -> Route:
    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics, include_in_schema=False)
