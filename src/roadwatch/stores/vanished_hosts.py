"""A PostgreSQL connection whose server's host is gone without closing it (a dead route, a
host failed over, a firewall or NAT that forgot the connection) fails within about 30 s,
rather than when the kernel gives up retransmitting, a quarter of an hour later.

Nothing answers such a connection, so nothing raises: the indexer held its batch, and a
request its connection, for as long as the kernel kept trying. A server that is only slow (a
long statement, a lock, a checkpoint) still acknowledges what it is sent and answers the
probes from its kernel, and is waited for as before.

asyncpg has no setting for this (MagicStack/asyncpg#606): the options are set on its socket.
"""

import socket
from typing import Any

import asyncpg

# Probes start after this many seconds without traffic, one every KEEPALIVE_INTERVAL…
KEEPALIVE_IDLE = 10
KEEPALIVE_INTERVAL = 5
KEEPALIVE_PROBES = 4
# …and data or probes left unacknowledged this long end the connection (Linux).
UNACKNOWLEDGED_MS = 30_000

_OPTIONS = [
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
    *(
        (socket.IPPROTO_TCP, getattr(socket, name), value)
        for name, value in (
            ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
            ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
            ("TCP_KEEPCNT", KEEPALIVE_PROBES),
            ("TCP_USER_TIMEOUT", UNACKNOWLEDGED_MS),
        )
        if hasattr(socket, name)
    ),
]


def give_up_on_vanished_host(connection: asyncpg.Connection) -> None:
    """Set the options on the connection's socket, if it is a TCP one (a Unix socket has no
    route to lose)."""
    # A private attribute of asyncpg's: it offers no other way to its socket.
    transport: Any = getattr(connection, "_transport")  # noqa: B009 (not in its stubs)
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    for level, option, value in _OPTIONS:
        sock.setsockopt(level, option, value)


async def on_new_connection(connection: asyncpg.Connection) -> None:
    """For asyncpg's pool, which calls it with each connection it opens (`init`)."""
    give_up_on_vanished_host(connection)
