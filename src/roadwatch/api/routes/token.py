from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import OAuth2PasswordRequestForm

from roadwatch.api.deps import Services
from roadwatch.api.errors import TooManyAttempts, WrongCredentials, responses
from roadwatch.api.schemas import TokenOut

router = APIRouter(tags=["users"])


@router.post(
    "/token",
    responses=responses(400, 401, 422, 429),
    summary="Log in (OAuth2 password flow)",
    description="Repeated failures for one username or one address are refused with 429 "
    "for a while.",
)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, services: Services
) -> TokenOut:
    user = form.username.casefold()
    address = request.client.host if request.client else "unknown"
    wait = max(
        services.user_throttle.retry_after(user), services.address_throttle.retry_after(address)
    )
    if wait:
        raise TooManyAttempts(wait)
    found = await services.users.password_login(form.username)
    # Verified even for an unknown user (against a dummy hash): the time taken is the same.
    verified = await run_in_threadpool(
        services.passwords.verify, form.password, found[1] if found else None
    )
    if found is None or not verified:
        services.user_throttle.failed(user)
        services.address_throttle.failed(address)
        raise WrongCredentials
    services.user_throttle.succeeded(user)
    issued = services.tokens.issue(found[0].id)
    return TokenOut(access_token=issued.value, expires_in=issued.expires_in)
