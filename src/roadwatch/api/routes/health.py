import asyncio
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from roadwatch.api.alerts_feed import FeedDown
from roadwatch.api.deps import Services
from roadwatch.api.json_request import JsonTextRoute
from roadwatch.api.schemas import ReadinessOut

router = APIRouter(tags=["health"], route_class=JsonTextRoute)


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "alive"}


@router.get(
    "/readyz",
    responses={503: {"model": ReadinessOut, "description": "A dependency does not answer"}},
    summary="The databases and the broker answer",
)
async def readyz(services: Services) -> JSONResponse:
    checks = {
        "detections database": services.detections.ping,
        "users database": services.users.ping,
        "broker": services.alerts.ping,
    }
    results = dict(
        zip(
            checks, await asyncio.gather(*(_check(probe) for probe in checks.values())), strict=True
        )
    )
    ready = all(result == "ok" for result in results.values())
    body = ReadinessOut(ready=ready, checks=results)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


async def _check(probe: Callable[[], Awaitable[None]]) -> str:
    try:
        await asyncio.wait_for(probe(), timeout=2)
    except FeedDown as down:
        return str(down)
    except Exception as error:
        return f"unreachable: {type(error).__name__}"
    return "ok"
