from fastapi import APIRouter

from roadwatch.api.deps import CurrentUser, Services
from roadwatch.api.errors import responses

router = APIRouter(tags=["detections"])


@router.get(
    "/stats",
    responses=responses(401),
    summary="Vehicle counts per make, largest first",
    response_description='A JSON object from make to count, e.g. {"Chevrolet": 966, "Ford": 826}',
)
async def stats(user: CurrentUser, services: Services) -> dict[str, int]:
    return await services.detections.count_by_make()
