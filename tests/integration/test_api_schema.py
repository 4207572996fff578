"""The API as a whole, for each store: its OpenAPI document holds, unknown routes, metrics."""

import asyncio
import sys
from pathlib import Path

import pytest

from tests.helpers.api_stack import Stack
from tests.helpers.metrics import samples

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]


async def test_an_unknown_route_is_a_json_404(stack: Stack) -> None:
    response = await stack.client.get("/nowhere")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


@pytest.mark.slow
async def test_schemathesis_finds_no_server_error_and_no_response_off_schema(
    stack: Stack, tmp_path: Path
) -> None:
    token = stack.admin_headers["Authorization"]
    result = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{stack.api.url}/openapi.json",
        "--header",
        f"Authorization: {token}",
        "--exclude-path",
        "/alerts",
        "--exclude-path",
        "/token",
        "--checks",
        "all",
        # A cursor is an opaque token: a well-formed string the API did not issue is a 422,
        # which this check would count as rejecting valid input.
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        "40",
        "--seed",
        "1",
        "--report-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await result.communicate()
    assert result.returncode == 0, output.decode()[-6000:]


async def test_metrics_time_requests_by_route_and_count_alert_clients(stack: Stack) -> None:
    await stack.client.get("/detections", params={"limit": 1}, headers=stack.admin_headers)
    await stack.client.get("/detections", params={"limit": 0}, headers=stack.admin_headers)
    async with stack.client.stream("GET", "/alerts", headers=stack.admin_headers) as live:
        assert live.status_code == 200
        during = samples((await stack.client.get("/metrics")).text)

    def requests(route: str, status: str) -> float:
        key = (
            "roadwatch_http_request_seconds_count",
            (("method", "GET"), ("route", route), ("status", status)),
        )
        return during.get(key, 0)

    assert requests("/detections", "200") >= 1
    assert requests("/detections", "422") >= 1
    assert during[("roadwatch_sse_clients", ())] >= 1
    assert ("roadwatch_sse_clients_dropped_total", ()) in during
