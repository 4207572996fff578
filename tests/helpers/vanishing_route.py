"""A route to a local server that can vanish: packets dropped, nothing closed, as when a
host dies or a network between goes down. Linux, as root: a network namespace of its own,
joined to this one by a pair of virtual links, with a relay on each side.

    client ─→ NS_ADDRESS:port (relay, in the namespace) ─→ HOST_ADDRESS:port (relay, here)
           ─→ the server on 127.0.0.1

`cut()` takes the namespace's end of the link down: what the client sends is never
acknowledged, and nothing answers it. `restore()` brings it back up, so that what is still
connected can close as it would (a client closed over a dead route waits, and cancelling
it can leave tasks that never end).
"""

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.ports import free_port
from tests.helpers.relays import pipe

ROOT = Path(__file__).resolve().parents[2]


def can_make_namespaces() -> bool:
    """Whether this machine lets the tests make a network namespace: tried, not guessed."""
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = f"rwprobe{secrets.token_hex(3)}"
    try:
        _ip("netns", "add", probe)
    except subprocess.CalledProcessError:
        return False
    _ip("netns", "del", probe)
    return True


async def relay(listen: tuple[str, int], to: tuple[str, int]) -> asyncio.Server:
    """A TCP relay from `listen` to `to`, one connection there for each one here."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            onward_reader, onward_writer = await asyncio.open_connection(*to)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, onward_writer), pipe(onward_reader, writer))

    return await asyncio.start_server(handle, *listen)


@dataclass
class VanishingRoute:
    host: str
    port: int
    namespace: str
    link: str

    def cut(self) -> None:
        _ip("netns", "exec", self.namespace, "ip", "link", "set", self.link, "down")

    def restore(self) -> None:
        """The route back: what was left unacknowledged is sent again, and answered."""
        _ip("netns", "exec", self.namespace, "ip", "link", "set", self.link, "up")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@asynccontextmanager
async def vanishing_route(to: tuple[str, int]) -> AsyncIterator[VanishingRoute]:
    """A route to the server at `to` (on this host) that `cut()` makes vanish."""
    tag = secrets.token_hex(3)
    namespace, outside, inside = f"rw{tag}", f"rwo{tag}", f"rwi{tag}"
    # A /30 of 10.0.0.0/8 of the namespace's own, unlikely to meet another's.
    subnet = f"10.{secrets.randbelow(250) + 1}.{secrets.randbelow(250) + 1}"
    here, there = f"{subnet}.1", f"{subnet}.2"
    _ip("netns", "add", namespace)
    relay_in_namespace: asyncio.subprocess.Process | None = None
    server: asyncio.Server | None = None
    route: VanishingRoute | None = None
    try:
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", namespace)
        _ip("addr", "add", f"{here}/30", "dev", outside)
        _ip("link", "set", outside, "up")
        _ip("netns", "exec", namespace, "ip", "addr", "add", f"{there}/30", "dev", inside)
        _ip("netns", "exec", namespace, "ip", "link", "set", inside, "up")
        onward_port, port = free_port(), free_port()
        server = await relay((here, onward_port), to)
        module = ["-m", "tests.helpers.vanishing_route"]
        relay_in_namespace = await asyncio.create_subprocess_exec(
            *("ip", "netns", "exec", namespace, sys.executable, *module),
            *(there, str(port), here, str(onward_port)),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        assert relay_in_namespace.stdout is not None
        ready = await relay_in_namespace.stdout.readline()
        assert ready == b"ready\n", "the relay in the namespace did not start"
        route = VanishingRoute(there, port, namespace, inside)
        yield route
    finally:
        if route is not None:
            # Up again before the relay ends, so that its end reaches the relay here, and
            # no connection through them is left waiting for ever.
            with suppress(subprocess.CalledProcessError):
                route.restore()
        if relay_in_namespace is not None:
            relay_in_namespace.kill()
            await relay_in_namespace.wait()
        if server is not None:
            server.close()
        with suppress(subprocess.CalledProcessError):
            _ip("link", "del", outside)
        _ip("netns", "del", namespace)


async def _serve(listen: tuple[str, int], to: tuple[str, int]) -> None:
    server = await relay(listen, to)
    print("ready", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    listen_host, listen_port, to_host, to_port = sys.argv[1:]
    asyncio.run(_serve((listen_host, int(listen_port)), (to_host, int(to_port))))
