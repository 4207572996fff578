from fastapi import APIRouter, status
from fastapi.concurrency import run_in_threadpool

from roadwatch.api.deps import CurrentUser, OptionalToken, Services, authenticate
from roadwatch.api.errors import NotAdministrator, NotAuthenticated, responses
from roadwatch.api.schemas import SetupOut, UserCreate, UserOut

router = APIRouter(tags=["users"])


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 401, 403, 409, 422),
    summary="Create a user",
    description="The first user of an empty system needs no token and becomes an "
    "administrator; after that, creating users takes an administrator's token.",
)
async def create_user(body: UserCreate, services: Services, token: OptionalToken) -> UserOut:
    password_hash = await run_in_threadpool(services.passwords.hash, body.password)
    if token is None:
        first = await services.users.create_first(
            username=body.username, password_hash=password_hash
        )
        if first is None:
            raise NotAuthenticated("creating users takes an administrator's token")
        return UserOut.of(first)
    creator = await authenticate(services, token)
    if not creator.is_admin:
        raise NotAdministrator
    user = await services.users.create(
        username=body.username, password_hash=password_hash, is_admin=False
    )
    return UserOut.of(user)


@router.get("/users/me", responses=responses(401), summary="The current user")
async def me(user: CurrentUser) -> UserOut:
    return UserOut.of(user)


@router.get("/setup", summary="Whether the system still awaits its first user")
async def setup(services: Services) -> SetupOut:
    return SetupOut(needs_first_user=not await services.users.has_users())
