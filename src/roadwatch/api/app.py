from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry

from roadwatch import __version__
from roadwatch.api.errors import install_error_handlers
from roadwatch.api.metrics import ApiMetrics, RequestTimer
from roadwatch.api.request_limits import RequestLimits
from roadwatch.api.routes import (
    alerts,
    detections,
    health,
    stats,
    token,
    users,
    watchlists,
    web,
    webhooks,
)
from roadwatch.api.services import ApiServices
from roadwatch.prometheus import metrics_route

DESCRIPTION = """\
Vehicle detections indexed from Kafka by roadwatch's indexer.

Create the first user with `POST /users` (no token needed while there is none), log in with
**Authorize** (or `POST /token`), then list detections, counts per make, and follow alerts
live.
"""


def create_app(
    open_services: Callable[[], AbstractAsyncContextManager[ApiServices]],
    *,
    registry: CollectorRegistry,
    metrics: ApiMetrics,
) -> FastAPI:
    """The API, whose services are opened when it starts and closed when it stops."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with open_services() as services:
            app.state.services = services
            yield

    app = FastAPI(
        title="roadwatch Detections API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by routes/web.py from local files, under the dashboard's CSP.
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    # The routes themselves, not the routers: FastAPI matches an included router's routes
    # through a layer of its own, twice per request.
    for module in (users, token, detections, stats, alerts, watchlists, webhooks, health, web):
        app.router.routes.extend(module.router.routes)
    app.mount("/static/swagger", StaticFiles(directory=web.SWAGGER_UI_FILES), name="swagger")
    app.mount("/static", StaticFiles(directory=web.WEB_FILES), name="static")
    app.router.routes.append(metrics_route(registry))
    app.add_middleware(RequestTimer, metrics=metrics)
    # Added last, so run first: nothing is read before the request's size is known to be fine.
    app.add_middleware(RequestLimits)
    return app
