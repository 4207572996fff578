"""Route logic, through the whole app (middleware and error handlers included), over
in-memory stores: who may do what, and what each refusal says."""

import uuid
from collections.abc import AsyncIterator

import pytest

from tests.helpers.api_fakes import SETUP_TOKEN, FakeApi, fake_api

ADMIN = {"username": "admin", "password": "correct horse battery staple"}
OPERATOR = {"username": "operator", "password": "a different long secret"}


@pytest.fixture
async def api() -> AsyncIterator[FakeApi]:
    async with fake_api() as api:
        yield api


async def _bearer(api: FakeApi, user: dict[str, str]) -> dict[str, str]:
    answer = await api.client.post("/token", data=user)
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


async def _admin(api: FakeApi) -> dict[str, str]:
    created = await api.client.post("/users", json=ADMIN, headers={"X-Setup-Token": SETUP_TOKEN})
    assert created.status_code == 201, created.text
    return await _bearer(api, ADMIN)


async def test_the_first_user_takes_the_setup_token_and_no_one_comes_after_it(
    api: FakeApi,
) -> None:
    assert (await api.client.get("/setup")).json()["needs_first_user"] is True
    refused = await api.client.post("/users", json=ADMIN, headers={"X-Setup-Token": "guess"})
    assert refused.status_code == 401
    assert "setup token" in refused.json()["detail"]
    assert not await api.users.has_users()

    await _admin(api)
    (admin,) = await api.users.list_users()
    assert admin.is_admin

    again = await api.client.post("/users", json=OPERATOR, headers={"X-Setup-Token": SETUP_TOKEN})
    assert again.status_code == 401
    assert "administrator's token" in again.json()["detail"]
    assert len(await api.users.list_users()) == 1
    assert (await api.client.get("/setup")).json()["needs_first_user"] is False


async def test_an_operator_is_not_an_administrator_and_loses_access_when_disabled(
    api: FakeApi,
) -> None:
    admin = await _admin(api)
    created = await api.client.post("/users", json=OPERATOR, headers=admin)
    assert created.status_code == 201, created.text
    operator = await _bearer(api, OPERATOR)
    assert (await api.client.get("/users", headers=operator)).status_code == 403
    assert (await api.client.get("/users/me", headers=operator)).json()["username"] == "operator"

    disabled = await api.client.patch(
        f"/users/{created.json()['id']}", json={"disabled": True}, headers=admin
    )
    assert disabled.status_code == 200, disabled.text
    assert (await api.client.get("/users/me", headers=operator)).status_code == 401
    assert (await api.client.post("/token", data=OPERATOR)).status_code == 401


async def test_an_administrator_cannot_remove_their_own_access(api: FakeApi) -> None:
    admin = await _admin(api)
    me = (await api.client.get("/users/me", headers=admin)).json()
    assert (await api.client.delete(f"/users/{me['id']}", headers=admin)).status_code == 409
    assert (await api.client.delete(f"/users/{uuid.uuid4()}", headers=admin)).status_code == 404
    assert len(await api.users.list_users()) == 1


async def test_a_rule_is_published_once_stored_and_its_name_is_taken_whatever_its_case(
    api: FakeApi,
) -> None:
    admin = await _admin(api)
    created = await api.client.post(
        "/watchlists", json={"name": "Jeeps", "make": "Jeep"}, headers=admin
    )
    assert created.status_code == 201, created.text
    rule_id = uuid.UUID(created.json()["id"])
    taken = await api.client.post(
        "/watchlists", json={"name": "JEEPS", "make": "Ram"}, headers=admin
    )
    assert taken.status_code == 409
    assert (await api.client.delete(f"/watchlists/{rule_id}", headers=admin)).status_code == 204
    assert api.topic.sent == [("put", rule_id), ("remove", rule_id)]


async def test_a_webhook_is_refused_an_internal_address_or_an_unknown_rule(api: FakeApi) -> None:
    admin = await _admin(api)
    internal = await api.client.post(
        "/webhooks", json={"url": "http://10.0.0.5/hook"}, headers=admin
    )
    assert internal.status_code == 422
    assert "internal address" in internal.text
    unknown = await api.client.post(
        "/webhooks",
        json={"url": "https://93.184.216.34/hook", "rules": [str(uuid.uuid4())]},
        headers=admin,
    )
    assert unknown.status_code == 422
    assert "no watchlist rule" in unknown.text
    assert await api.webhooks.page() == []

    made = await api.client.post(
        "/webhooks", json={"url": "https://93.184.216.34/hook"}, headers=admin
    )
    assert made.status_code == 201, made.text
    assert made.json()["secret"].startswith("whsec_")
    (listed,) = (await api.client.get("/webhooks", headers=admin)).json()
    assert listed["id"] == made.json()["id"]
    assert "secret" not in listed
