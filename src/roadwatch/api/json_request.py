"""Request bodies read as JSON text by RFC 8259, with orjson.

Starlette reads a body with Python's json module, which takes a lone surrogate escape
(`"\\ud800"`) into a str that no database, and no UTF-8 encoder, will take: the request got
a 500 where it should get a 422. orjson refuses any body that is not valid JSON text, and
its error is a json.JSONDecodeError, which FastAPI answers with a 422 naming the position.
"""

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute


class _JsonTextRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


class JsonTextRoute(APIRoute):
    """The route class of every router: its body, if JSON, must be JSON text."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(_JsonTextRequest(request.scope, request.receive))

        return handle
