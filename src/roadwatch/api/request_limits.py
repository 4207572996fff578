"""Requests are bounded before they are read: a body over 64 KiB is refused with 413, a
header over 8 KiB or headers over 32 KiB in all with 431, so that no client can make the API
read or parse more."""

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 64 * 1024
MAX_HEADER_BYTES = 8 * 1024
MAX_HEADERS_BYTES = 32 * 1024


class _BodyTooLarge(HTTPException):
    """Raised while the body is read; FastAPI answers it as it answers any HTTPException."""


class RequestLimits:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int = MAX_BODY_BYTES,
        max_header: int = MAX_HEADER_BYTES,
        max_headers: int = MAX_HEADERS_BYTES,
    ) -> None:
        self._app = app
        self._max_body = max_body
        self._max_header = max_header
        self._max_headers = max_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        sizes = [len(name) + len(value) for name, value in headers]
        if any(size > self._max_header for size in sizes):
            await _refuse(send, 431, f"a request header is over {self._max_header} bytes")
            return
        if sum(sizes) > self._max_headers:
            await _refuse(send, 431, f"the request headers are over {self._max_headers} bytes")
            return
        declared = next((value for name, value in headers if name == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > self._max_body):
            await _refuse(send, 413, f"the request body is over {self._max_body} bytes")
            return

        # A body sent without a length is counted as it arrives.
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self._max_body:
                    raise _BodyTooLarge(413, f"the request body is over {self._max_body} bytes")
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, counted_receive, watched_send)
        except _BodyTooLarge:
            if not started:
                await _refuse(send, 413, f"the request body is over {self._max_body} bytes")


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = f'{{"detail": "{detail}"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
