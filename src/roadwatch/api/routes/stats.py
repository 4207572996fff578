from fastapi import APIRouter

from roadwatch.api.deps import CurrentUser, Services
from roadwatch.api.errors import responses
from roadwatch.api.json_body import JsonBody

router = APIRouter(tags=["detections"])


@router.get(
    "/stats",
    responses=responses(401, 503),
    summary="Vehicle counts per make, largest first",
    response_model=dict[str, int],
    response_description='A JSON object from make to count, e.g. {"Chevrolet": 966, "Ford": 826}',
)
async def stats(user: CurrentUser, services: Services) -> JsonBody:
    return JsonBody(await services.detections.count_by_make())
