"""A local Kafka of several nodes: its size, kept by the state directory; the id every node
is formatted with; and waiting for them all to join."""

import asyncio
import base64
import contextlib
import json
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from roadwatch.infra.config import InfraConfig
from roadwatch.infra.errors import InfraError
from roadwatch.kafka.types import AIOKafkaAdminClient, KafkaError

# The first node's data directory.
FIRST = "kafka"
# Where the first node keeps the cluster's id and size.
CLUSTER_FILE = "cluster.json"
# How long the first node waits for the others to join before it creates the topics.
JOIN_WITHIN = 120.0


def cluster_size(config: InfraConfig) -> tuple[int, str | None]:
    """How many nodes this state directory's Kafka has (or will have), and what is wrong if
    the configuration asks for another number."""
    first = config.data_dir(FIRST)
    recorded: int | None = None
    if (first / CLUSTER_FILE).exists():
        recorded = int(json.loads((first / CLUSTER_FILE).read_text())["nodes"])
    elif (first / "log" / "meta.properties").exists():
        recorded = 1
    if recorded is None:
        return config.kafka_brokers, None
    if "kafka_brokers" in config.model_fields_set and config.kafka_brokers != recorded:
        return recorded, (
            f"{config.home} holds a Kafka of {recorded} broker(s), and "
            f"ROADWATCH_KAFKA_BROKERS asks for {config.kafka_brokers}: use another "
            "ROADWATCH_HOME, or remove its kafka* folders first"
        )
    return recorded, None


def cluster_id_for(config: InfraConfig, *, nodes: int, node: int) -> str:
    """The id to format node `node` with: the same for every node of a cluster, made by the
    first to ask."""
    fresh = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if nodes == 1:
        return fresh
    record = config.data_dir(FIRST) / CLUSTER_FILE
    if not record.exists():
        record.parent.mkdir(parents=True, exist_ok=True)
        draft = record.with_name(f".{record.name}.{node}")
        draft.write_text(json.dumps({"id": fresh, "nodes": nodes}))
        # Nodes provision at once: the first link wins, and every node reads its id.
        with contextlib.suppress(FileExistsError):
            os.link(draft, record)
        draft.unlink()
    return str(json.loads(record.read_text())["id"])


async def brokers_joined(bootstrap: str, nodes: int, *, service: str) -> None:
    """Return once `nodes` brokers are in the cluster and each takes connections;
    InfraError past JOIN_WITHIN."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        await joined(admin.describe_cluster, nodes, service=service, within=JOIN_WITHIN)
    finally:
        await admin.close()


async def joined(
    describe: Callable[[], Awaitable[dict[str, Any]]],
    nodes: int,
    *,
    service: str,
    within: float,
    every: float = 0.5,
) -> None:
    """Ask `describe` (the admin client's describe_cluster) until `nodes` brokers are listed
    and each takes connections; InfraError past `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            brokers, last = (await describe())["brokers"], ""
        except KafkaError as error:
            # The client asks any broker it knows, one listed a moment before it takes
            # connections too (NodeNotReadyError): not yet.
            brokers, last = [], f": {error}"
        if await _all_answering(brokers, nodes):
            return
        if time.monotonic() > deadline:
            raise InfraError(service, f"not all {nodes} brokers joined within {within:.0f} s{last}")
        await asyncio.sleep(every)


async def _all_answering(brokers: list[dict[str, Any]], nodes: int) -> bool:
    """Whether `nodes` brokers are listed and each accepts a connection. A broker is listed
    once it registers, a moment before its listener takes connections: an admin client
    that picked it then failed at once (NodeNotReadyError), and the cluster did not start."""
    if len(brokers) < nodes:
        return False
    for broker in brokers:
        try:
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(broker["host"], broker["port"]), timeout=2
            )
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return True
