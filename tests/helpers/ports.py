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


def free_ports_in_a_row(count: int) -> int:
    """The first of `count` consecutive free ports, for servers that number theirs in a row."""
    start = FIRST + _worker * PER_WORKER
    for first in random.sample(range(start, start + PER_WORKER - count), 200):
        wanted = range(first, first + count)
        if _handed.intersection(wanted):
            continue
        if all(_bindable(port) for port in wanted):
            _handed.update(wanted)
            return first
    raise RuntimeError(f"no {count} free ports in a row in {start}..{start + PER_WORKER - 1}")


def _bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
