"""The API's outer middleware on a bare Starlette app: size limits, and metrics of 500s."""

from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from roadwatch.api.metrics import ApiMetrics, RequestTimer
from roadwatch.api.request_limits import MAX_BODY_BYTES, RequestLimits


async def echo(request: Request) -> JSONResponse:
    return JSONResponse({"bytes": len(await request.body())})


async def broken(_request: Request) -> JSONResponse:
    raise RuntimeError("a bug")


def client(registry: CollectorRegistry | None = None) -> httpx.AsyncClient:
    app = Starlette(routes=[Route("/echo", echo, methods=["POST"]), Route("/broken", broken)])
    app.add_middleware(RequestTimer, metrics=ApiMetrics(registry or CollectorRegistry()))
    app.add_middleware(RequestLimits)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://api")


async def test_a_body_up_to_the_limit_is_read() -> None:
    async with client() as api:
        response = await api.post("/echo", content=b"x" * MAX_BODY_BYTES)
    assert response.json() == {"bytes": MAX_BODY_BYTES}


async def test_a_declared_body_over_the_limit_is_refused_unread() -> None:
    async with client() as api:
        response = await api.post("/echo", content=b"x" * (MAX_BODY_BYTES + 1))
    assert response.status_code == 413
    assert str(MAX_BODY_BYTES) in response.json()["detail"]


async def test_a_body_without_a_length_is_cut_off_at_the_limit() -> None:
    read = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal read
        for _ in range(100):
            read += 16 * 1024
            yield b"y" * 16 * 1024

    async with client() as api:
        response = await api.post("/echo", content=chunks())
    assert response.status_code == 413
    assert read < 100 * 16 * 1024


@pytest.mark.parametrize("size", [8 * 1024 + 1, 1024 * 1024])
async def test_a_header_over_8_kib_is_refused(size: int) -> None:
    async with client() as api:
        response = await api.post("/echo", headers={"Authorization": "B" * size})
    assert response.status_code == 431


async def test_many_headers_each_under_the_limit_are_refused_together() -> None:
    headers = {f"X-Pad-{n}": "y" * 7_000 for n in range(5)}
    async with client() as api:
        refused = await api.post("/echo", headers=headers)
        accepted = await api.post("/echo", headers=dict(list(headers.items())[:4]))
    assert refused.status_code == 431
    assert accepted.status_code == 200


async def test_a_500_is_counted_like_any_other_answer() -> None:
    registry = CollectorRegistry()
    async with client(registry) as api:
        response = await api.get("/broken")
    assert response.status_code == 500
    labels = {"method": "GET", "route": "/broken", "status": "500"}
    assert registry.get_sample_value("roadwatch_http_request_seconds_count", labels) == 1
