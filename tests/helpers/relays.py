"""What the tests' TCP relays share: one direction of a relayed connection."""

import asyncio
import contextlib


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """What `reader` receives, written on to `writer` until it ends; then `writer` closed."""
    try:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
    finally:
        writer.close()
