"""The API under floods: its memory stays bounded and /healthz keeps answering.

Each flood is wrk (in C, so that the client's own cost stays small) with 50 connections for
a fixed time, while this process asks /healthz every 20 ms and samples the API's resident
memory every 50 ms. The API trusts 127.0.0.1 as a proxy, so that a flood can come from many
addresses (X-Forwarded-For), as a botnet's would.
"""

import asyncio
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.stack import Bench, RunningApi, running_api

CONNECTIONS = 50

# wrk scripts: each request from another address, with another made-up name.
_COUNTER = """
local n = 0
local function address()
  n = n + 1
  local high, middle = math.floor(n / 65536) % 256, math.floor(n / 256) % 256
  return string.format("10.%d.%d.%d", high, middle, n % 256)
end
"""
FLOODS = {
    "parallel logins from many addresses": _COUNTER
    + """
request = function()
  local body = "username=user" .. n .. "&password=a+guess+of+some+length"
  return wrk.format("POST", "/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Forwarded-For"] = address(),
  }, body)
end
""",
    "anonymous POST /users": _COUNTER
    + """
request = function()
  local body = '{"username": "mallory' .. n .. '", "password": "an uncommon passphrase"}'
  address()
  return wrk.format("POST", "/users", {["Content-Type"] = "application/json"}, body)
end
""",
    "logins with 60 KB usernames": _COUNTER
    + """
local long = string.rep("x", 60000)
request = function()
  local body = "username=" .. n .. long .. "&password=a+guess+of+some+length"
  return wrk.format("POST", "/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["X-Forwarded-For"] = address(),
  }, body)
end
""",
    "1 MiB bodies": """
local body = string.rep("x", 1048576)
request = function()
  return wrk.format("POST", "/users", {["Content-Type"] = "application/json"}, body)
end
""",
}


def rss_mb(api: RunningApi) -> float:
    for line in Path(f"/proc/{api.process.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def _flood(api: RunningApi, script: str, seconds: int) -> dict[str, Any]:
    latencies: list[float] = []
    peak = before = rss_mb(api)
    done = asyncio.Event()

    async def probe() -> None:
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
            while not done.is_set():
                started = time.perf_counter()
                await client.get("/healthz")
                latencies.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(0.02)

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mb(api))
            await asyncio.sleep(0.05)

    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(script)
        lua.flush()
        watchers = [asyncio.create_task(probe()), asyncio.create_task(sample())]
        wrk = await asyncio.create_subprocess_exec(
            *["wrk", "--threads", "2", "--connections", str(CONNECTIONS)],
            *["--duration", f"{seconds}s", "--timeout", "30s", "--script", lua.name, api.url],
            stdout=asyncio.subprocess.PIPE,
        )
        output = (await wrk.communicate())[0].decode()
        done.set()
        await asyncio.gather(*watchers)
    requests = re.search(r"(\d+) requests in", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if wrk.returncode != 0 or requests is None or rate is None:
        raise RuntimeError(f"the flood failed:\n{output}")
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "requests": int(requests[1]),
        "requests_per_second": round(float(rate[1])),
        "rss_before_mb": round(before, 1),
        "rss_peak_mb": round(peak, 1),
        "rss_after_mb": round(rss_mb(api), 1),
        "healthz_p50_ms": round(statistics.median(latencies), 1),
        "healthz_p99_ms": round(quantiles[98], 1),
        "healthz_max_ms": round(max(latencies), 1),
    }


async def measure(bench: Bench, *, seconds: int) -> dict[str, Any]:
    async with bench.postgres_database() as url:
        settings = (await bench.settings_for(store_url=url, users_url=url)).model_copy(
            update={"trusted_proxies": "127.0.0.1"}
        )
        async with running_api("api-abuse", settings) as api:
            return {name: await _flood(api, script, seconds) for name, script in FLOODS.items()}
