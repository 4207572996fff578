"""The whole of roadwatch, each process its own, over topics and databases of its own: the
API (with an administrator and an operator), an indexer, a deliverer posting every alert to
a local receiver, and an SSE client following /alerts. Canaries show each still at work."""

import asyncio
import contextlib
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import orjson

from roadwatch.alerts import encode_alert
from roadwatch.domain import Alert, RuleRef
from roadwatch.runtime.lifecycle import cancelled
from roadwatch.settings import Settings
from roadwatch.watchlists.rules import Rule, rule_to_json
from tests.helpers.api_stack import AdminStack, admin_stack
from tests.helpers.factories import make_detection
from tests.helpers.kafka import send_values
from tests.helpers.ports import free_port
from tests.helpers.processes import (
    process_alive,
    start_deliverer_process,
    start_indexer_process,
)
from tests.helpers.receivers import Receiver, receiver_running
from tests.helpers.servers import Servers, create_topic, unique
from tests.helpers.sse import read_events
from tests.helpers.waiting import eventually

# How long a process may take to show that it is still at work after a hostile input.
CANARY_WITHIN = 20.0


class Starter(Protocol):
    def __call__(
        self, settings: Settings, *, group: str, log: Path, metrics_port: int
    ) -> subprocess.Popen[bytes]: ...


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    health: str
    log: Path

    async def alive_and_ready(self) -> None:
        assert process_alive(self.popen.pid), f"the {self.name} exited: {self.tail()}"

        async def ready() -> bool:
            async with httpx.AsyncClient(timeout=5) as client:
                try:
                    return (await client.get(f"{self.health}/readyz")).status_code == 200
                except httpx.TransportError:
                    return False

        await eventually(ready, within=CANARY_WITHIN, what=f"the {self.name} ready")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@dataclass
class System:
    stack: AdminStack
    indexer: Process
    deliverer: Process
    receiver: Receiver
    webhook_id: str
    # Every alert the SSE client has seen, by detection id.
    streamed: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def bootstrap(self) -> str:
        return self.stack.settings.kafka_broker_url

    async def api_ready(self) -> None:
        answer = await self.stack.client.get("/readyz")
        assert answer.status_code == 200, answer.text

    async def detection_stored(self) -> None:
        """A detection sent now is stored: the indexer reads on."""
        model = unique("canary")
        detection = {"Year": 2020, "Make": "Canary", "Model": model, "Category": "Sedan"}
        topic = self.stack.settings.detections_topic
        await send_values(self.bootstrap, topic, [orjson.dumps(detection)])

        async def stored() -> bool:
            found = await self.stack.client.get(
                "/detections", params={"model": model}, headers=self.stack.operator
            )
            return found.status_code == 200 and len(found.json()["items"]) == 1

        await eventually(stored, within=CANARY_WITHIN, what=f"the canary {model} stored")
        await self.indexer.alive_and_ready()

    async def alert_followed(self) -> None:
        """An alert published now reaches the SSE client and the receiver."""
        alert = canary_alert()
        alert_id = str(alert.detection.id)
        await send_values(self.bootstrap, self.stack.settings.alerts_topic, [encode_alert(alert)])

        async def arrived() -> bool:
            return alert_id in self.streamed and alert_id in self.receiver.alert_ids()

        await eventually(arrived, within=CANARY_WITHIN, what=f"the canary alert {alert_id}")
        await self.api_ready()
        await self.deliverer.alive_and_ready()

    async def rule_followed(self) -> None:
        """A rule written to the topic now raises an alert for the next detection it
        matches: the indexer follows the rules."""
        make = unique("Canary")
        rule = Rule(id=uuid.uuid4(), name=make, make=make)
        await send_values(
            self.bootstrap,
            self.stack.settings.watchlists_topic,
            [rule_to_json(rule)],
            key=str(rule.id).encode(),
        )
        detection = orjson.dumps({"Year": 2020, "Make": make, "Model": "X", "Category": "Van"})

        async def alerted() -> bool:
            # Again until the indexer has read the rule: a detection read before it is not
            # an alert.
            await send_values(self.bootstrap, self.stack.settings.detections_topic, [detection])
            await asyncio.sleep(0.5)
            return any(a["make"] == make for a in self.streamed.values())

        await eventually(alerted, within=CANARY_WITHIN, what=f"an alert of the rule {make}")
        await self.indexer.alive_and_ready()


def canary_alert() -> Alert:
    detection = make_detection(make="Canary", model="Alert", timestamp=datetime.now(UTC))
    return Alert(detection, (RuleRef(uuid.uuid4(), "canaries"),))


async def _follow_alerts(system: System, client: httpx.AsyncClient) -> None:
    async with client.stream("GET", "/alerts", headers=system.stack.operator) as response:
        async for event in read_events(response):
            body = orjson.loads(event.data)
            system.streamed[body["id"]] = body


def _started(name: str, start: Starter, settings: Settings, *, logs: Path) -> Process:
    port, log = free_port(), logs / f"{name}.log"
    popen = start(settings, group=unique(name), log=log, metrics_port=port)
    return Process(name, popen, f"http://127.0.0.1:{port}", log)


@asynccontextmanager
async def system_running(servers: Servers, *, logs: Path) -> AsyncIterator[System]:
    async with (
        admin_stack(
            servers,
            log=logs / "api.log",
            webhooks_dead_letter_topic=await create_topic(servers.kafka, partitions=1),
            webhook_allowed_networks="127.0.0.1/32",
            webhook_timeout=2.0,
            webhook_retry_first=0.2,
            webhook_retry_longest=1.0,
        ) as stack,
        receiver_running() as receiver,
    ):
        created = await stack.client.post(
            "/webhooks", json={"url": receiver.url}, headers=stack.admin
        )
        assert created.status_code == 201, created.text
        receiver.secrets.append(created.json()["secret"])
        indexer = _started("indexer", start_indexer_process, stack.settings, logs=logs)
        deliverer = _started("deliverer", start_deliverer_process, stack.settings, logs=logs)
        system = System(stack, indexer, deliverer, receiver, created.json()["id"])
        # A stream waits as long as no alert comes.
        sse = httpx.AsyncClient(base_url=stack.api.url, timeout=httpx.Timeout(10, read=None))
        following = asyncio.create_task(_follow_alerts(system, sse))
        try:
            await indexer.alive_and_ready()
            await deliverer.alive_and_ready()
            yield system
        finally:
            with contextlib.suppress(httpx.HTTPError):
                await cancelled(following)
            await sse.aclose()
            for process in (indexer, deliverer):
                process.popen.terminate()
                await asyncio.to_thread(process.popen.wait, 30)
