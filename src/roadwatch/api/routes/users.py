from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Request, Response, status

from roadwatch.api.credential_rules import password_problem
from roadwatch.api.deps import (
    Administrator,
    CurrentUser,
    OptionalToken,
    Services,
    authenticate,
    client_address,
)
from roadwatch.api.errors import (
    CannotChangeOwnAccess,
    NotAdministrator,
    NotAuthenticated,
    UnfitPassword,
    UserNotFound,
    WrongCredentials,
    responses,
)
from roadwatch.api.json_request import JsonTextRoute
from roadwatch.api.schemas import (
    NewPassword,
    PasswordChange,
    SetupOut,
    TokenOut,
    UserChange,
    UserCreate,
    UserOut,
)
from roadwatch.api.services import ApiServices
from roadwatch.domain import User

router = APIRouter(tags=["users"], route_class=JsonTextRoute)


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    responses=responses(400, 401, 403, 409, 422, 503),
    summary="Create a user",
    description="The first user of an empty system takes the one-time setup token, in "
    "`X-Setup-Token` (`roadwatch api` prints a link that carries it), and becomes an "
    "administrator; after that, creating users takes an administrator's token. Usernames "
    "are unique whatever their case.",
)
async def create_user(
    body: UserCreate,
    services: Services,
    token: OptionalToken,
    setup_token: Annotated[str | None, Header(alias="X-Setup-Token", max_length=200)] = None,
) -> UserOut:
    # Who asks is settled before the costly hash: without a token, only while no user
    # exists, and only with the setup token.
    if token is None:
        if await services.setup.has_users():
            raise NotAuthenticated("creating users takes an administrator's token")
        if not services.setup.admits(setup_token):
            raise NotAuthenticated(
                "creating the first user takes the setup token: open the link that "
                "`roadwatch api` printed, or run `roadwatch users create --admin NAME`"
            )
        _guessable_refused(body)
        password_hash = await services.passwords.hash(body.password)
        first = await services.users.create_first(
            username=body.username, password_hash=password_hash
        )
        if first is None:
            raise NotAuthenticated("creating users takes an administrator's token")
        return UserOut.of(first)
    creator = await authenticate(services, token)
    if not creator.is_admin:
        raise NotAdministrator
    _guessable_refused(body)
    password_hash = await services.passwords.hash(body.password)
    user = await services.users.create(
        username=body.username, password_hash=password_hash, is_admin=False
    )
    return UserOut.of(user)


@router.get("/users", responses=responses(401, 403, 503), summary="Every user (administrators)")
async def list_users(_admin: Administrator, services: Services) -> list[UserOut]:
    return [UserOut.of(user) for user in await services.users.list_users()]


@router.get("/users/me", responses=responses(401, 503), summary="The current user")
async def me(user: CurrentUser) -> UserOut:
    return UserOut.of(user)


@router.put(
    "/users/me/password",
    responses=responses(400, 401, 422, 429, 503),
    summary="Change your password",
    description="Takes the current password. Every token issued before stops working, this "
    "request's included; the answer carries a new one.",
)
async def change_my_password(
    body: PasswordChange, user: CurrentUser, services: Services, request: Request
) -> TokenOut:
    address = client_address(request)
    # Guessing the current password with a stolen token is throttled like a login.
    await services.login_throttle.admit(user.username, address)
    current = await services.users.password_hash(user.id)
    if not await services.passwords.verify(body.current_password, current):
        raise WrongCredentials
    changed = await _set_password(services, user, body.new_password)
    issued = services.tokens.issue(changed.id, version=changed.credentials_version)
    return TokenOut(access_token=issued.value, expires_in=issued.expires_in)


@router.put(
    "/users/{user_id:uuid}/password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(400, 401, 403, 404, 409, 422, 503),
    summary="Set another user's password (administrators)",
    description="The user's tokens stop working. Administrators change their own with "
    "`PUT /users/me/password`, which takes the current one.",
)
async def reset_password(
    user_id: UUID, body: NewPassword, admin: Administrator, services: Services
) -> Response:
    if user_id == admin.id:
        raise CannotChangeOwnAccess
    user = await _existing(services, user_id)
    await _set_password(services, user, body.new_password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch(
    "/users/{user_id:uuid}",
    responses=responses(400, 401, 403, 404, 409, 422, 503),
    summary="Disable or enable a user (administrators)",
    description="A disabled user cannot log in, and their tokens stop working within 10 s.",
)
async def change_user(
    user_id: UUID, body: UserChange, admin: Administrator, services: Services
) -> UserOut:
    if user_id == admin.id:
        raise CannotChangeOwnAccess
    changed = await services.users.set_disabled(user_id, body.disabled)
    if changed is None:
        raise UserNotFound
    services.recent_users.forget(user_id)
    return UserOut.of(changed)


@router.delete(
    "/users/{user_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 409, 503),
    summary="Delete a user (administrators)",
)
async def delete_user(user_id: UUID, admin: Administrator, services: Services) -> Response:
    if user_id == admin.id:
        raise CannotChangeOwnAccess
    if not await services.users.delete(user_id):
        raise UserNotFound
    services.recent_users.forget(user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/setup",
    responses=responses(503),
    summary="Whether the system still awaits its first user",
)
async def setup(services: Services) -> SetupOut:
    return SetupOut(needs_first_user=not await services.setup.has_users())


def _guessable_refused(body: UserCreate) -> None:
    """UnfitPassword for a password zxcvbn finds guessable: judged only now, once the
    request is authorised, as it costs milliseconds of CPU."""
    problem = password_problem(body.password, username=body.username)
    if problem is not None:
        raise UnfitPassword(problem)


async def _existing(services: ApiServices, user_id: UUID) -> User:
    user = await services.users.get(user_id)
    if user is None:
        raise UserNotFound
    return user


async def _set_password(services: ApiServices, user: User, password: str) -> User:
    problem = password_problem(password, username=user.username)
    if problem is not None:
        raise UnfitPassword(problem)
    changed = await services.users.set_password(user.id, await services.passwords.hash(password))
    if changed is None:
        raise UserNotFound
    services.recent_users.forget(user.id)
    return changed
