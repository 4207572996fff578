"""A process's own small HTTP server: /metrics, /healthz and /readyz."""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping

import uvicorn
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from roadwatch.prometheus import metrics_route
from roadwatch.runtime.readiness import Probe, readiness


def health_app(*, registry: CollectorRegistry, probes: Mapping[str, Probe]) -> Starlette:
    async def healthz(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "alive"})

    async def readyz(_request: Request) -> JSONResponse:
        ready, checks = await readiness(probes)
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            metrics_route(registry),
        ]
    )


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server inside a process that handles SIGINT and SIGTERM itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def health_server(app: Starlette, *, host: str, port: int) -> EmbeddedServer:
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    return EmbeddedServer(config)


@contextlib.asynccontextmanager
async def serving_health(
    address: tuple[str, int] | None, *, registry: CollectorRegistry, probes: Mapping[str, Probe]
) -> AsyncIterator[None]:
    """/metrics, /healthz and /readyz on `address` (none if None) while the block runs."""
    if address is None:
        yield
        return
    server = health_server(
        health_app(registry=registry, probes=probes), host=address[0], port=address[1]
    )
    serving = asyncio.create_task(server.serve())
    try:
        yield
    finally:
        server.should_exit = True
        await serving
