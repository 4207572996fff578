"""Every error raised on purpose reaches a client with the status of its kind, whichever
module raised it: the API maps kinds, not classes."""

import uuid

import httpx
import pytest
from fastapi import FastAPI

from roadwatch.api.cursors import InvalidCursor
from roadwatch.api.errors import (
    NotAdministrator,
    RuleNotFound,
    UserNotFound,
    WrongCredentials,
    install_error_handlers,
)
from roadwatch.api.login_throttle import TooManyAttempts
from roadwatch.api.security import InvalidToken
from roadwatch.api.stream_slots import TooManyStreams
from roadwatch.errors import ConfigurationError, Invalid, RoadwatchError
from roadwatch.stores.detection_store import StoreBusy, StoreUnreachable
from roadwatch.stores.users import UsernameTaken
from roadwatch.watchlists.registry import RulesNotPublished
from roadwatch.watchlists.rules import InvalidRule
from roadwatch.watchlists.store import RuleNameTaken, TooManyRules
from roadwatch.webhooks.registry import UnknownRules
from roadwatch.webhooks.store import TooManyWebhooks
from roadwatch.webhooks.targets import RefusedTarget

CASES: list[tuple[RoadwatchError, int, dict[str, str]]] = [
    (InvalidToken("expired"), 401, {"www-authenticate": "Bearer"}),
    (WrongCredentials(), 401, {"www-authenticate": "Bearer"}),
    (NotAdministrator(), 403, {}),
    (UserNotFound(), 404, {}),
    (RuleNotFound(), 404, {}),
    (UsernameTaken("ann"), 409, {}),
    (RuleNameTaken("SUVs"), 409, {}),
    (TooManyRules(50_000), 409, {}),
    (TooManyWebhooks(), 409, {}),
    (InvalidRule("no field set"), 422, {}),
    (InvalidCursor("bad"), 422, {}),
    (RefusedTarget("loopback"), 422, {}),
    (UnknownRules([uuid.uuid4()]), 422, {}),
    (Invalid("any new invalid thing"), 422, {}),
    (StoreBusy("slow"), 503, {"retry-after": "1"}),
    (RulesNotPublished("broker away"), 503, {"retry-after": "1"}),
    (TooManyAttempts(17), 429, {"retry-after": "17"}),
    (TooManyStreams("10 of yours"), 429, {"retry-after": "5"}),
]


def _app_raising(error: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/")
    async def fail() -> None:
        raise error

    return app


@pytest.mark.parametrize(("error", "status", "headers"), CASES, ids=lambda c: type(c).__name__)
async def test_an_error_answers_with_the_status_of_its_kind(
    error: RoadwatchError, status: int, headers: dict[str, str]
) -> None:
    transport = httpx.ASGITransport(app=_app_raising(error))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        answer = await client.get("/")
    assert answer.status_code == status
    assert headers.items() <= answer.headers.items()
    assert answer.json()["detail"]


async def test_an_error_of_no_kind_is_a_500_that_says_nothing() -> None:
    app = _app_raising(ConfigurationError("a secret: hunter2"))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        answer = await client.get("/")
    assert answer.status_code == 500
    assert "hunter2" not in answer.text


async def test_a_503_says_what_failed_and_logs_what_the_server_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    said = "dial tcp 10.0.4.7:5432: connect: connection refused"
    app = _app_raising(StoreUnreachable("the database cannot be reached", cause=said))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        answers = [await client.get("/") for _ in range(3)]
    assert [a.status_code for a in answers] == [503] * 3
    assert {a.json()["detail"] for a in answers} == {"the database cannot be reached"}
    logged = [r.getMessage() for r in caplog.records if r.name == "roadwatch.api.errors"]
    # Once for the outage's three answers: the next would come after 10 s.
    assert logged == [f"answered 503: the database cannot be reached: {said}"]


def test_what_a_server_said_is_kept_only_so_far() -> None:
    huge = StoreUnreachable("the database cannot be reached", cause="x" * 1_000_000)
    assert huge.cause == "x" * StoreUnreachable.MAX_CAUSE
    assert str(huge) == f"the database cannot be reached: {'x' * StoreUnreachable.MAX_CAUSE}"
