"""The API's users and tokens through HTTP: who may do what, and bad credentials."""

import time
import uuid

import jwt
import pytest

from tests.helpers.api_stack import Stack, login
from tests.helpers.processes import TEST_JWT_SECRET
from tests.helpers.servers import unique

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.postgres,
    # Users live in PostgreSQL whatever the detection store: one store is enough here.
    pytest.mark.parametrize("stack", ["postgres"], indirect=True, scope="module"),
]


async def test_the_first_user_is_an_administrator_and_then_users_need_one(stack: Stack) -> None:
    me = await stack.client.get("/users/me", headers=stack.admin_headers)
    assert me.status_code == 200
    assert me.json()["username"] == "admin"
    assert me.json()["is_admin"] is True
    assert "password" not in me.text

    anonymous = await stack.client.post(
        "/users", json={"username": "mallory", "password": "an uncommon passphrase"}
    )
    assert anonymous.status_code == 401

    name = unique("operator")
    created = await stack.client.post(
        "/users",
        json={"username": name, "password": "a long enough secret"},
        headers=stack.admin_headers,
    )
    assert created.status_code == 201
    assert set(created.json()) == {"id", "username", "is_admin", "created_at", "disabled"}
    assert created.json()["is_admin"] is False
    uuid.UUID(created.json()["id"])

    again = await stack.client.post(
        "/users",
        json={"username": name, "password": "another long secret"},
        headers=stack.admin_headers,
    )
    assert again.status_code == 409
    assert name in again.json()["detail"]

    operator = {
        "Authorization": f"Bearer {await login(stack.client, name, 'a long enough secret')}"
    }
    refused = await stack.client.post(
        "/users",
        json={"username": unique("eve"), "password": "an uncommon passphrase"},
        headers=operator,
    )
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "ok-name", "password": "pw-7Qz"}, "password"),
        ({"username": "no spaces allowed", "password": "long enough password"}, "username"),
        ({"username": "ab", "password": "long enough password"}, "username"),
        ({"username": "-dash-first", "password": "long enough password"}, "username"),
    ],
)
async def test_a_weak_password_or_malformed_username_is_a_422_naming_the_rule(
    stack: Stack, body: dict[str, str], field: str
) -> None:
    response = await stack.client.post("/users", json=body, headers=stack.admin_headers)
    assert response.status_code == 422
    problems = response.json()["detail"]
    assert [problem["loc"][-1] for problem in problems] == [field]
    assert problems[0]["msg"]
    assert body["password"] not in response.text


def _token(claims: dict[str, object], *, key: str = TEST_JWT_SECRET, alg: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=alg)


async def test_every_bad_token_is_a_401(stack: Stack) -> None:
    me = (await stack.client.get("/users/me", headers=stack.admin_headers)).json()
    now = int(time.time())
    good = {"sub": me["id"], "ver": 0, "iat": now, "exp": now + 60, "jti": str(uuid.uuid4())}
    valid = _token(good)
    header, payload, signature = valid.split(".")
    unsigned = jwt.encode(good, "", algorithm="none")
    bad_tokens = {
        "expired": _token({**good, "iat": now - 120, "exp": now - 60}),
        "tampered": f"{header}.{payload[:-2]}xy.{signature}",
        "wrong key": _token(good, key="some-other-secret-that-is-long-enough-000"),
        "alg none": unsigned,
        "HS512": _token(good, alg="HS512"),
        "no jti": _token({k: v for k, v in good.items() if k != "jti"}),
        "no version": _token({k: v for k, v in good.items() if k != "ver"}),
        "an old version": _token({**good, "ver": -1}),
        "a version that is no number": _token({**good, "ver": "0"}),
        "unknown user": _token({**good, "sub": str(uuid.uuid4())}),
        "garbage": "not-a-jwt",
    }
    assert (
        await stack.client.get("/users/me", headers={"Authorization": f"Bearer {valid}"})
    ).status_code == 200
    for name, token in bad_tokens.items():
        for path in ("/users/me", "/detections", "/stats", "/alerts"):
            response = await stack.client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, (name, path)
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["detail"]
    for path in ("/users/me", "/detections", "/stats", "/alerts"):
        assert (await stack.client.get(path)).status_code == 401


async def test_repeated_failed_logins_are_refused_for_a_while(stack: Stack) -> None:
    name = unique("target")
    await stack.client.post(
        "/users",
        json={"username": name, "password": "the right password"},
        headers=stack.admin_headers,
    )
    codes = []
    for _ in range(6):
        response = await stack.client.post("/token", data={"username": name, "password": "wrong!"})
        codes.append(response.status_code)
    assert codes == [401] * 5 + [429]
    right = await stack.client.post(
        "/token", data={"username": name, "password": "the right password"}
    )
    assert right.status_code == 429
    assert int(right.headers["retry-after"]) > 0
