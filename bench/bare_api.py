"""The limit beside the API: a bare Starlette app over an asyncpg pool that answers the
API's read requests with the API's queries and the same JSON, and nothing else: no
authentication, no validation, no models, no middleware.

- `/detections?limit=N`: the first page and the total from the per-make counts;
- `/detections?make=M`: a page of one make and that make's count;
- `/detections?cursor=C`: the page after a cursor, and the total;
- `/stats`: the per-make counts, largest first.

`python -m bench.bare_api PORT DATABASE_URL` serves it.
"""

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

from roadwatch.api.cursors import decode_cursor, encode_cursor
from roadwatch.stores.detection_store import Position

COLUMNS = "SELECT id, timestamp, year, make, model, category FROM detections"
ORDER = "ORDER BY timestamp DESC, id DESC"
PAGE = f"{COLUMNS} {ORDER} LIMIT $1"
PAGE_OF_MAKE = f"{COLUMNS} WHERE make = $1 {ORDER} LIMIT $2"
PAGE_AFTER = f"{COLUMNS} WHERE (timestamp, id) < ($1, $2) {ORDER} LIMIT $3"
TOTAL = "SELECT coalesce(sum(count), 0) FROM make_counts WHERE count > 0"
TOTAL_OF_MAKE = "SELECT coalesce(sum(count), 0) FROM make_counts WHERE make = $1"
COUNTS = "SELECT make, count FROM make_counts WHERE count > 0"


async def _no_reset(_connection: asyncpg.Connection) -> None:
    """As the API's read pool has it: no reset query when a connection goes back."""


def app(url: str) -> Starlette:
    pool: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        pool["pool"] = await asyncpg.create_pool(url, min_size=10, max_size=10, reset=_no_reset)
        yield
        await pool["pool"].close()

    async def detections(request: Request) -> Response:
        query = request.query_params
        limit = int(query.get("limit", "50"))
        make, cursor = query.get("make"), query.get("cursor")
        async with pool["pool"].acquire() as connection:
            if make is not None:
                rows = await connection.fetch(PAGE_OF_MAKE, make, limit)
                total = await connection.fetchval(TOTAL_OF_MAKE, make)
            elif cursor is not None:
                after = decode_cursor(cursor)
                rows = await connection.fetch(PAGE_AFTER, after.timestamp, after.id, limit)
                total = await connection.fetchval(TOTAL)
            else:
                rows = await connection.fetch(PAGE, limit)
                total = await connection.fetchval(TOTAL)
        items = [
            {
                "id": str(row["id"]),
                "timestamp": row["timestamp"],
                "year": row["year"],
                "make": row["make"],
                "model": row["model"],
                "category": row["category"],
            }
            for row in rows
        ]
        last = rows[-1] if len(rows) == limit else None
        body = {
            "items": items,
            "total": int(total),
            "total_capped": False,
            "skip": 0,
            "limit": limit,
            "next_cursor": last and encode_cursor(Position(last["timestamp"], last["id"])),
        }
        return Response(orjson.dumps(body, option=orjson.OPT_UTC_Z), media_type="application/json")

    async def stats(_request: Request) -> Response:
        async with pool["pool"].acquire() as connection:
            rows = await connection.fetch(COUNTS)
        counts = dict(sorted(((make, count) for make, count in rows), key=lambda c: (-c[1], c[0])))
        return Response(orjson.dumps(counts), media_type="application/json")

    routes = [Route("/detections", detections), Route("/stats", stats)]
    return Starlette(routes=routes, lifespan=lifespan)


if __name__ == "__main__":
    port, url = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(app(url), host="127.0.0.1", port=port, log_level="warning", access_log=False)
