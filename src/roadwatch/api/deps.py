"""What routes ask for, as Annotated aliases, so that a route reads like its description."""

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from fastapi.security.base import SecurityBase

from roadwatch.api.errors import NotAdministrator, NotAuthenticated
from roadwatch.api.services import ApiServices
from roadwatch.domain import User

bearer = OAuth2PasswordBearer(tokenUrl="token", auto_error=False)


# async, though it awaits nothing: FastAPI runs a plain function dependency in a worker thread,
# which cost every request a thread hand-off.
async def _services(request: Request) -> ApiServices:
    services: ApiServices = request.app.state.services
    return services


Services = Annotated[ApiServices, Depends(_services)]
OptionalToken = Annotated[str | None, Depends(bearer)]


def client_address(request: Request) -> str:
    """The peer's address; a trusted proxy's X-Forwarded-For has replaced it (uvicorn)."""
    return request.client.host if request.client else "unknown"


async def authenticate(services: ApiServices, token: str | None) -> User:
    if token is None:
        raise NotAuthenticated
    claims = services.tokens.verify(token)
    user = await services.recent_users.get(claims.user_id)
    if user is None:
        raise NotAuthenticated("the token's user no longer exists")
    if user.disabled:
        raise NotAuthenticated("the token's user is disabled")
    if claims.version != user.credentials_version:
        raise NotAuthenticated("the token was issued before the user's password or access changed")
    return user


class _BearerUser(SecurityBase):
    """The user whose bearer token the request carries, or 401; to OpenAPI, the password
    flow's bearer scheme.

    One dependency with no others under it: FastAPI solves every level of dependencies
    anew on each request, cached ones included, and reaching the token and the services
    through dependencies of their own cost two more solves per request.
    """

    def __init__(self) -> None:
        self.model = bearer.model
        self.scheme_name = bearer.scheme_name

    async def __call__(self, request: Request) -> User:
        services: ApiServices = request.app.state.services
        return await authenticate(services, await bearer(request))


_current_user = _BearerUser()


async def _administrator(user: Annotated[User, Depends(_current_user)]) -> User:
    if not user.is_admin:
        raise NotAdministrator
    return user


CurrentUser = Annotated[User, Depends(_current_user)]
Administrator = Annotated[User, Depends(_administrator)]
