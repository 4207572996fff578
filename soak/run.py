"""One soak, start to end: servers, processes, load and faults; then the drain and the
checks from outside."""

import asyncio
import contextlib
import sys
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tests.helpers.api_stack import admin_and_operator
from tests.helpers.receivers import Receiver
from tests.helpers.waiting import eventually

from roadwatch.catalog.producer import ProducerStats
from roadwatch.settings import Settings
from soak import checks
from soak.checks import Invariant
from soak.database import Database
from soak.faults import Done, Faults
from soak.fleet import Fleet, Member, fleet_of
from soak.load import Tally, producing, receivers_running
from soak.schedule import plan
from soak.servers import BROKERS, servers_running
from soak.topics import read_committed, record_count
from soak.watchers import Watchers, watchers_of

ROLES = ("indexer", "api", "deliverer")
# Retries come within seconds, so that what a fault held back arrives within the run.
SETTINGS = {
    "webhook_allowed_networks": "127.0.0.1/32",
    "webhook_timeout": 5.0,
    "webhook_retry_first": 0.5,
    "webhook_retry_longest": 5.0,
    # The slow receiver takes 0.2 s a request: 64 at once keep up with 220 alerts/s.
    "webhook_concurrency": 64,
    # Twenty clients of one user, any of them on either API process.
    "alert_streams_per_user": 40,
    # A client resumes from where its API's feed was when it was killed. At 220 alerts/s the
    # default window (10,000) reaches 45 s back, and the soak kills both API processes
    # within seconds on a saturated machine: in its first ten-minute run six resumes came
    # from further back, and got a gap event. 40,000 alerts (about 13 MB) reach three
    # minutes back; docs/reliability.md says how to size it.
    "alerts_resume_window": 40_000,
}


@dataclass(frozen=True)
class SoakPlan:
    seconds: float = 600.0
    rate: float = 1000.0
    seed: int = 1
    sse_clients: int = 20
    indexers: int = 2
    apis: int = 2
    deliverers: int = 2
    # How long the system may take, once the load stops, to deliver everything.
    drain_limit: float = 600.0


@dataclass
class SoakResult:
    plan: SoakPlan
    produced: ProducerStats
    faults: list[Done]
    # Records that are no detection, sent beside the detections.
    bad_sent: int = 0
    invariants: list[Invariant] = field(default_factory=list)
    # Seconds from the load's end until everything was stored and delivered; None: never.
    drained: float | None = None

    @property
    def held(self) -> bool:
        return all(invariant.held for invariant in self.invariants) and all(
            fault.recovered is not None for fault in self.faults
        )


async def soak(chosen: SoakPlan, *, home: Path) -> SoakResult:
    logs = home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # The processes append to their logs across restarts; a run reads only its own.
    for old in _process_logs(logs):
        old.unlink()
    async with AsyncExitStack() as stack:
        servers = await stack.enter_async_context(servers_running(home, Settings(_env_file=None)))
        settings = servers.settings(**SETTINGS)
        database = Database(servers.postgres_url)
        receivers = await stack.enter_async_context(receivers_running(chosen.seed))
        fleet = fleet_of(
            settings,
            logs=logs,
            indexers=chosen.indexers,
            apis=chosen.apis,
            deliverers=chosen.deliverers,
        )
        stack.callback(fleet.stop)
        api = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
        operator = await _set_up(fleet, api, receivers)
        watchers = watchers_of(chosen.sse_clients, apis=fleet.api_urls, headers=operator)
        watchers.start()
        stack.push_async_callback(watchers.stop)
        await eventually(watchers.connected, within=60, what="every SSE client connected")

        started = time.monotonic()
        load = await stack.enter_async_context(
            producing(settings, rate=chosen.rate, seed=chosen.seed)
        )
        faults = Faults(
            servers,
            fleet,
            clock=lambda: time.monotonic() - started,
            acknowledged=lambda: load.stats.acknowledged,
            stored=database.stored,
        )
        members = {role: len(fleet.of(role)) for role in ROLES}
        planned = plan(chosen.seconds, chosen.seed, members=members, brokers=BROKERS)
        striking = asyncio.create_task(faults.run(planned))
        await asyncio.sleep(chosen.seconds)
        load.stop.set()
        produced = await load.task
        bad_sent = await load.bad
        done = await striking
        result = SoakResult(chosen, produced, done, bad_sent)

        ended = time.monotonic()
        if await _drained(settings, database, receivers, fleet, chosen.drain_limit):
            result.drained = time.monotonic() - ended
        truth = await checks.truth(settings)
        await _streams_caught_up(truth, watchers)
        api.base_url = httpx.URL(fleet.api_urls[0])
        api.headers.update(operator)
        result.invariants = [
            checks.stored_once(
                truth, await database.detection_ids(), acknowledged=produced.acknowledged
            ),
            checks.once_each(
                "Every alert on the alerts topic (read committed) exactly once",
                truth.alerting,
                truth.alerts_on_topic,
                where="on the topic",
            ),
            checks.once_each(
                "Every record that is no detection dead-lettered exactly once (read committed)",
                truth.bad,
                truth.dead_lettered,
                where="dead-lettered",
            ),
            checks.once_each(
                "Every alert in the alert history exactly once",
                truth.alerting,
                await database.alert_ids(),
                where="in the history",
            ),
            *await checks.counts_agree(api, database),
            checks.streams_complete(truth, watchers.watchers),
            *checks.receivers_complete(truth, receivers),
            await _every_process_ready(fleet),
            checks.nothing_logged_as_error(_process_logs(logs)),
        ]
    return result


async def _set_up(
    fleet: Fleet, api: httpx.AsyncClient, receivers: dict[str, Receiver]
) -> dict[str, str]:
    """The API processes ready, an administrator and an operator, a webhook for each
    receiver, then the indexers and deliverers ready; the operator's Authorization."""
    for member in fleet.of("api"):
        member.launch()
    await _all_ready(fleet, fleet.of("api"), within=90)
    first = fleet.api_urls[0]
    async with httpx.AsyncClient(base_url=first, timeout=30) as client:
        admin, operator = await admin_and_operator(client)
        for receiver in receivers.values():
            created = await client.post("/webhooks", json={"url": receiver.url}, headers=admin)
            created.raise_for_status()
            receiver.secrets.append(created.json()["secret"])
    for member in fleet.members:
        if member.popen is None:
            member.launch()
    await _all_ready(fleet, fleet.members, within=90)
    return operator


async def _all_ready(fleet: Fleet, members: list[Member], *, within: float) -> None:
    async def ready() -> bool:
        return not await fleet.not_ready(members)

    await eventually(ready, within=within, what="every process ready", every=0.5)


async def _drained(
    settings: Settings,
    database: Database,
    receivers: dict[str, Receiver],
    fleet: Fleet,
    limit: float,
) -> bool:
    """Whether, within `limit` seconds, every detection came to be stored and every alert
    acknowledged by every receiver, with every process ready; says how it goes meanwhile."""
    tallies = {name: Tally(receiver) for name, receiver in receivers.items()}
    said = 0.0

    async def done() -> bool:
        nonlocal said
        on_topic = await record_count(settings.kafka_broker_url, settings.detections_topic)
        letters = len(await read_committed(settings.kafka_broker_url, settings.dead_letter_topic))
        stored = await database.stored()
        alerts = await database.alerts()
        delivered = {name: tally.acknowledged() for name, tally in tallies.items()}
        not_ready = await fleet.not_ready(fleet.members)
        if time.monotonic() - said > 10:
            said = time.monotonic()
            print(
                f"draining: {stored}/{on_topic} stored, {letters} dead-lettered, {alerts} "
                f"alerts, delivered {delivered}"
                + (f", not ready: {', '.join(not_ready)}" if not_ready else ""),
                file=sys.stderr,
            )
        return (
            stored is not None
            and stored + letters >= on_topic
            and alerts is not None
            and min(delivered.values()) >= alerts
            and not not_ready
        )

    try:
        await eventually(done, within=limit, what="the drain", every=2)
    except AssertionError:
        return False
    return True


async def _streams_caught_up(truth: checks.Truth, watchers: Watchers) -> None:
    """Waits, a minute at most, for every SSE client to have seen what it is due."""

    async def caught_up() -> bool:
        return checks.streams_complete(truth, watchers.watchers).held

    with contextlib.suppress(AssertionError):
        await eventually(caught_up, within=60, what="the SSE clients", every=1)


def _process_logs(logs: Path) -> list[Path]:
    return [log for role in ROLES for log in logs.glob(f"{role}-*.log")]


async def _every_process_ready(fleet: Fleet) -> Invariant:
    not_ready = await fleet.not_ready(fleet.members)
    return Invariant(
        "Every process ready again",
        not not_ready,
        f"{len(fleet.members) - len(not_ready)} of {len(fleet.members)} ready"
        + (f"; not: {', '.join(not_ready)}" if not_ready else ""),
    )
