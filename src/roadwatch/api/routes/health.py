from fastapi import APIRouter
from fastapi.responses import JSONResponse

from roadwatch.api.deps import Services
from roadwatch.api.json_request import JsonTextRoute
from roadwatch.api.schemas import ReadinessOut
from roadwatch.runtime.readiness import readiness

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
    ready, results = await readiness(checks)
    body = ReadinessOut(ready=ready, checks=results)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
