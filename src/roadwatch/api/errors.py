"""The API's errors, and the one place where errors become HTTP responses."""

import logging

from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match

from roadwatch.api.schemas import ErrorOut
from roadwatch.api.security import InvalidToken
from roadwatch.errors import (
    Busy,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Throttled,
    Unauthenticated,
)
from roadwatch.logs import Throttled as ThrottledLog

log = logging.getLogger(__name__)


class NotAuthenticated(Unauthenticated):
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "a valid bearer token is needed"


class NotAdministrator(Forbidden):
    def __str__(self) -> str:
        return "only an administrator may do this"


class WrongCredentials(Unauthenticated):
    def __str__(self) -> str:
        return "wrong username or password"


class CannotChangeOwnAccess(Conflict):
    def __str__(self) -> str:
        return (
            "an administrator cannot disable, delete or reset their own account "
            "(change your password with PUT /users/me/password)"
        )


class UnfitPassword(Invalid):
    def __str__(self) -> str:
        return str(self.args[0])


class UserNotFound(NotFound):
    def __str__(self) -> str:
        return "no such user"


class RuleNotFound(NotFound):
    def __str__(self) -> str:
        return "no such watchlist rule"


class WebhookNotFound(NotFound):
    def __str__(self) -> str:
        return "no such webhook"


BEARER = {"WWW-Authenticate": "Bearer"}


def _reply(code: int, error: Exception, headers: dict[str, str] | None = None) -> JSONResponse:
    detail = error.detail if isinstance(error, StarletteHTTPException) else str(error)
    return JSONResponse({"detail": detail}, status_code=code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    # An outage fails every request: a line of each kind now and then is enough.
    busy_log = ThrottledLog(log)

    async def unauthorized(_request: Request, error: Exception) -> JSONResponse:
        if isinstance(error, InvalidToken):
            error = NotAuthenticated("the token is invalid or expired")
        return _reply(status.HTTP_401_UNAUTHORIZED, error, BEARER)

    async def forbidden(_request: Request, error: Exception) -> JSONResponse:
        return _reply(status.HTTP_403_FORBIDDEN, error)

    async def not_found(_request: Request, error: Exception) -> JSONResponse:
        return _reply(status.HTTP_404_NOT_FOUND, error)

    async def busy(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, Busy)
        if error.cause is not None:
            # A client is told what failed; what the server said stays in the log.
            busy_log.warning(type(error).__name__, "answered 503: %s", error)
        return JSONResponse(
            {"detail": error.public},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            headers={"Retry-After": "1"},
        )

    async def conflict(_request: Request, error: Exception) -> JSONResponse:
        return _reply(status.HTTP_409_CONFLICT, error)

    async def unprocessable(_request: Request, error: Exception) -> JSONResponse:
        return _reply(status.HTTP_422_UNPROCESSABLE_CONTENT, error)

    async def throttled(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, Throttled)
        return _reply(
            status.HTTP_429_TOO_MANY_REQUESTS, error, {"Retry-After": str(error.retry_after)}
        )

    async def invalid_request(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        # Without the offending input: it may be a password.
        problems = [
            {"loc": list(problem["loc"]), "msg": problem["msg"], "type": problem["type"]}
            for problem in error.errors()
        ]
        return JSONResponse({"detail": problems}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        if error.status_code != status.HTTP_405_METHOD_NOT_ALLOWED:
            return await http_exception_handler(request, error)
        # Starlette names only the first route that matched the path; every one counts.
        allowed = sorted(
            {
                method
                for route in app.router.routes
                if isinstance(route, BaseRoute) and route.matches(request.scope)[0] != Match.NONE
                for method in getattr(route, "methods", None) or ()
            }
        )
        return _reply(error.status_code, error, {"Allow": ", ".join(allowed)})

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    # By kind: an error raised anywhere finds its status by what it is (roadwatch/errors.py).
    app.add_exception_handler(Unauthenticated, unauthorized)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(NotFound, not_found)
    app.add_exception_handler(Conflict, conflict)
    app.add_exception_handler(Invalid, unprocessable)
    app.add_exception_handler(Busy, busy)
    app.add_exception_handler(Throttled, throttled)


def responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI entries for the error responses a route may give."""
    descriptions = {
        400: "The request body is not JSON (or form data) at all",
        401: "Missing, expired or invalid token",
        403: "Not allowed for this user",
        404: "No such resource",
        409: "Conflicts with what exists",
        422: "Invalid parameters",
        429: "Too many attempts, or streams",
        503: "The database or the broker is busy or cannot be reached; try again after Retry-After",
    }
    return {code: {"model": ErrorOut, "description": descriptions[code]} for code in codes}
