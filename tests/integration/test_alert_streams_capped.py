"""No user can take the streams, or the open files, that others need: a user holds at most
ALERT_STREAMS_PER_USER streams, the process at most ALERT_STREAMS_TOTAL, and past either the
answer is 429 with Retry-After, while /healthz and other users go on."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
import pytest

from tests.helpers.api_stack import AdminStack, admin_stack
from tests.helpers.metrics import samples
from tests.helpers.servers import Servers
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


@pytest.fixture(scope="module")
async def stack(
    servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AdminStack]:
    async with admin_stack(
        servers,
        log=tmp_path_factory.mktemp("api") / "api.log",
        alert_streams_per_user=3,
        alert_streams_total=5,
    ) as stack:
        yield stack


async def opened(stack: AdminStack, streams: AsyncExitStack, headers: dict[str, str]) -> int:
    """The status of a new /alerts stream, kept open until `streams` closes."""
    response = await streams.enter_async_context(
        stack.client.stream("GET", "/alerts", headers=headers)
    )
    return response.status_code


async def all_places_free(stack: AdminStack) -> None:
    """Wait until the server has given back every place: a closed stream's place comes back
    once the server has seen its client go."""

    async def free() -> bool:
        page = (await stack.client.get("/metrics")).text
        return samples(page).get(("roadwatch_alert_streams_open", ())) in {None, 0.0}

    await eventually(free, within=20, what="every stream's place given back")


async def test_past_a_users_share_429_and_other_users_and_health_go_on(
    stack: AdminStack,
) -> None:
    await all_places_free(stack)
    async with AsyncExitStack() as streams:
        statuses = [await opened(stack, streams, stack.operator) for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        refused = await stack.client.get("/alerts", headers=stack.operator)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) > 0
        assert await opened(stack, streams, stack.admin) == 200
        assert (await stack.client.get("/healthz")).status_code == 200
    # Closed streams give their places back.
    await all_places_free(stack)


async def test_past_the_servers_total_429(stack: AdminStack) -> None:
    await all_places_free(stack)
    async with AsyncExitStack() as streams:
        statuses = [await opened(stack, streams, stack.operator) for _ in range(3)]
        statuses += [await opened(stack, streams, stack.admin) for _ in range(3)]
        assert statuses == [200] * 5 + [429]
        assert (
            "the most it holds"
            in (await stack.client.get("/alerts", headers=stack.admin)).json()["detail"]
        )
        async with httpx.AsyncClient(base_url=stack.api.url, timeout=10) as other:
            assert (await other.get("/healthz")).status_code == 200
