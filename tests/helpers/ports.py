"""Ports for the servers that tests start.

A port is chosen below the kernel's ephemeral range: a port found free inside it may be
taken, before the server binds it, as the local port of some client's outgoing connection
(the server's own, to its database or broker, as it starts). Each pytest-xdist worker
chooses from a range of its own, and no port is handed out twice in a process.
"""

import os
import random
import socket

FIRST = 10_000
PER_WORKER = 2_000
_worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_handed: set[int] = set()


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, and that no client will take."""
    start = FIRST + _worker * PER_WORKER
    for port in random.sample(range(start, start + PER_WORKER), PER_WORKER):
        if port in _handed:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed.add(port)
        return port
    raise RuntimeError(f"no free port in {start}..{start + PER_WORKER - 1}")
