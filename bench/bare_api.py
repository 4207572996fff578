"""The limit beside the API: a bare Starlette app over an asyncpg pool that answers the
first page of /detections with the API's two queries (the page, and the total from the
per-make counts) and the same JSON, and nothing else: no authentication, no validation, no
models. `python -m bench.bare_api PORT DATABASE_URL` serves it."""

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

PAGE = (
    "SELECT id, timestamp, year, make, model, category FROM detections "
    "ORDER BY timestamp DESC, id DESC LIMIT $1"
)
TOTAL = "SELECT coalesce(sum(count), 0) FROM make_counts WHERE count > 0"


async def _no_reset(_connection: asyncpg.Connection) -> None:
    pass


def app(url: str) -> Starlette:
    pool: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # Without asyncpg's reset query on release, as the API's read pool does.
        pool["pool"] = await asyncpg.create_pool(url, min_size=10, max_size=10, reset=_no_reset)
        yield
        await pool["pool"].close()

    async def detections(request: Request) -> Response:
        limit = int(request.query_params.get("limit", "50"))
        async with pool["pool"].acquire() as connection:
            rows = await connection.fetch(PAGE, limit)
            total = await connection.fetchval(TOTAL)
        items = [
            {
                "id": str(row["id"]),
                "timestamp": row["timestamp"].isoformat(),
                "year": row["year"],
                "make": row["make"],
                "model": row["model"],
                "category": row["category"],
            }
            for row in rows
        ]
        body = {
            "items": items,
            "total": int(total),
            "total_capped": False,
            "skip": 0,
            "limit": limit,
            "next_cursor": None,
        }
        return Response(orjson.dumps(body), media_type="application/json")

    return Starlette(routes=[Route("/detections", detections)], lifespan=lifespan)


if __name__ == "__main__":
    port, url = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(app(url), host="127.0.0.1", port=port, log_level="warning", access_log=False)
