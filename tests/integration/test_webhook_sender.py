"""The sender's connections go only where the target policy permits: checked on the address
connected to, so a name that resolves inside is refused even when it was not at first."""

from aiohttp import web

from roadwatch.webhooks.sender import Sender
from roadwatch.webhooks.targets import TargetPolicy, parse_networks
from tests.helpers.ports import free_port
from tests.helpers.receivers import receiver_running


async def _nothing(_number: int, _request: web.Request) -> int:
    return 200


async def test_a_loopback_receiver_is_not_reached_without_the_allow_list() -> None:
    async with receiver_running(_nothing) as receiver:
        sender = Sender(TargetPolicy(), timeout=5)
        await sender.start()
        try:
            for url in (receiver.url, f"http://localhost:{receiver.port}/hook"):
                response = await sender.post(url, b"{}", {})
                assert response.status is None
                assert response.error is not None
                assert response.error.startswith("refused:"), response.error
        finally:
            await sender.close()
        assert receiver.requests == []


async def test_an_allowed_receiver_is_reached_and_redirects_are_not_followed() -> None:
    followed: list[str] = []

    async def hook(_request: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": "/elsewhere"})

    async def elsewhere(request: web.Request) -> web.Response:
        followed.append(request.path)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hook", hook)
    app.router.add_post("/elsewhere", elsewhere)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    sender = Sender(TargetPolicy(parse_networks("127.0.0.1/32")), timeout=5)
    await sender.start()
    try:
        response = await sender.post(f"http://127.0.0.1:{port}/hook", b"{}", {})
    finally:
        await sender.close()
        await runner.cleanup()
    assert response.status == 307
    assert response.error == "HTTP 307: redirects are not followed"
    assert followed == []
