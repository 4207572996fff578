from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm

from roadwatch.api.credential_rules import could_be_a_username
from roadwatch.api.deps import Services, client_address
from roadwatch.api.errors import WrongCredentials, responses
from roadwatch.api.json_request import JsonTextRoute
from roadwatch.api.schemas import TokenOut
from roadwatch.text import normalise

router = APIRouter(tags=["users"], route_class=JsonTextRoute)


@router.post(
    "/token",
    responses=responses(400, 401, 422, 429, 503),
    summary="Log in (OAuth2 password flow)",
    description="Attempts are limited per address, and per account from each address; an "
    "account tried from many addresses is slowed down for addresses it has not logged in "
    "from. Over a limit, the answer is 429 with Retry-After.",
)
async def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request, services: Services
) -> TokenOut:
    address = client_address(request)
    # Counted before the password is checked: parallel guesses are counted like serial ones.
    await services.login_throttle.admit(form.username, address)
    if not could_be_a_username(form.username):
        # No user has such a name, and saying so tells nothing: no hash is worth spending.
        raise WrongCredentials
    found = await services.users.password_login(normalise(form.username))
    # Verified even for an unknown user (against a dummy hash): the time taken is the same.
    verified = await services.passwords.verify(
        form.password, found[1] if found else None, abandoned=request.is_disconnected
    )
    if found is None or not verified or found[0].disabled:
        raise WrongCredentials
    user = found[0]
    await services.login_throttle.succeeded(form.username, address)
    issued = services.tokens.issue(user.id, version=user.credentials_version)
    return TokenOut(access_token=issued.value, expires_in=issued.expires_in)
