"""roadwatch against servers secured as a deployment's are: Kafka over SASL_SSL (SCRAM-SHA-512,
TLS checked against the local authority) with ACLs, and PostgreSQL over TLS with
`sslmode=verify-full`, each process as the least-privileged Kafka user and database role
that docs/deploying.md names."""

import asyncio
import gc
import subprocess
import uuid
import warnings
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

from roadwatch.bootstrap.stores import detection_store
from roadwatch.infra.kafka import ADMIN_USER
from roadwatch.kafka.acls import Grant
from roadwatch.kafka.check import check_kafka
from roadwatch.kafka.clients import kafka_options
from roadwatch.server_checks import server_problems
from roadwatch.settings import Settings
from tests.helpers.factories import make_detection
from tests.helpers.ports import free_port
from tests.helpers.processes import (
    FIRST_USER,
    ROADWATCH,
    settings_env,
    start_api,
    start_indexer_process,
    stopped_exit_code,
)
from tests.helpers.secured import Secured, secured_deployment
from tests.helpers.servers import Servers, unique
from tests.helpers.sse import read_events
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
async def secured(servers: Servers) -> AsyncIterator[Secured]:
    """A deployment with the grants docs/deploying.md names, its schema made by
    `roadwatch migrate`: the tests that share it store only what they name, or nothing."""
    async with secured_deployment(servers) as deployment:
        await _migrated(deployment)
        yield deployment


def _run(
    command: list[str], settings: Settings, *, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ROADWATCH, *command],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


async def _stored(url: str, model: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        count = await connection.fetchval("SELECT count(*) FROM detections WHERE model = $1", model)
        ssl = await connection.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert ssl, "the connection is not over TLS"
        return int(count)
    finally:
        await connection.close()


async def _send_as_camera(camera: Settings, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(**kafka_options(camera), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await asyncio.gather(*[await producer.send(camera.detections_topic, v) for v in values])
    finally:
        await producer.stop()


@pytest.mark.timeout(300)
async def test_the_whole_pipeline_runs_over_sasl_ssl_and_verified_tls_with_least_privilege(
    secured: Secured, tmp_path: Path
) -> None:
    indexer_log = tmp_path / "indexer.log"
    indexer = start_indexer_process(secured.indexer, group=secured.indexer_group, log=indexer_log)
    api = await asyncio.to_thread(
        start_api, secured.api, port=free_port(), log=tmp_path / "api.log"
    )
    try:
        async with httpx.AsyncClient(
            base_url=api.url, timeout=httpx.Timeout(10, read=None)
        ) as client:
            await client.post(
                "/users",
                json={"username": "admin", "password": "a long password"},
                headers=FIRST_USER,
            )
            token = (
                await client.post(
                    "/token", data={"username": "admin", "password": "a long password"}
                )
            ).json()["access_token"]
            model = f"secured-{uuid.uuid4().hex[:8]}"
            alerts: list[dict[str, object]] = []

            async def follow() -> None:
                headers = {"Authorization": f"Bearer {token}"}
                async with client.stream("GET", "/alerts", headers=headers) as response:
                    async for event in read_events(response):
                        if event.event == "alert":
                            alerts.append(orjson.loads(event.data))

            follower = asyncio.create_task(follow())
            values = [
                orjson.dumps({"Year": 2011, "Make": "Toyota", "Model": model, "Category": c})
                for c in ["SUV"] + ["Sedan"] * 19
            ]
            await _send_as_camera(secured.camera, values)
            url = secured.indexer.detections_db_url
            await eventually(lambda: _has(url, model, 20), within=60, what="20 stored over TLS")

            async def alerted() -> bool:
                return any(a.get("model") == model for a in alerts)

            await eventually(alerted, within=30, what="the alert on the stream")
            follower.cancel()
            page = await client.get(
                "/detections",
                params={"model": model, "limit": 50},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert page.status_code == 200
            assert page.json()["total"] == 20
        # The simulated cameras too, through their own least-privileged user.
        produced = await asyncio.to_thread(_run, ["produce", "--count", "5"], secured.camera)
        assert produced.returncode == 0, produced.stderr
    finally:
        api.stop()
        stopped = stopped_exit_code(indexer, indexer_log)
    assert stopped == 0, indexer_log.read_text()[-3000:]
    assert await _stored(secured.indexer.detections_db_url, model) == 20


async def _has(url: str, model: str, count: int) -> bool:
    return await _stored(url, model) == count


def _refuses(command: list[str], settings: Settings, *words: str) -> None:
    """The process exits 1 within a minute, one line of its standard error saying what is
    wrong (with each of `words`), and nothing retried meanwhile."""
    done = _run(command, settings, timeout=60)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1, "\n".join(lines)
    fatal = [line for line in lines if line.startswith("roadwatch:")]
    assert len(fatal) == 1, "\n".join(lines)
    for word in words:
        assert word in fatal[0], fatal[0]
    retried = [line for line in lines if "trying again" in line]
    assert not retried, retried


async def _migrated(secured: Secured) -> None:
    """The schema made by `roadwatch migrate`, as the tables' owner, over verified TLS."""
    done = await asyncio.to_thread(_run, ["migrate"], secured.indexer)
    assert done.returncode == 0, done.stderr


async def test_a_wrong_password_an_unknown_authority_or_a_missing_acl_stop_a_process_at_once(
    secured: Secured,
) -> None:
    wrong_password = secured.indexer.model_copy(
        update={"kafka_sasl_password": SecretStr("not-the-password")}
    )
    await asyncio.to_thread(
        _refuses,
        ["indexer"],
        wrong_password,
        "authentication",
        secured.indexer.kafka_sasl_username or "",
    )

    unknown_authority = secured.api.model_copy(update={"kafka_ssl_ca_file": None})
    await asyncio.to_thread(
        _refuses, ["api"], unknown_authority, "TLS", "not trusted", "KAFKA_SSL_CA_FILE"
    )

    # The camera's user may write detections, and nothing else: as the deliverer, it
    # sees neither the alerts nor its dead letters.
    await asyncio.to_thread(
        _refuses, ["deliver"], secured.camera, secured.camera.alerts_topic, "deploying.md"
    )


async def test_an_acl_missing_for_a_consumer_group_stops_the_indexer_with_one_line(
    secured: Secured,
) -> None:
    await asyncio.to_thread(
        _refuses,
        ["indexer", "--group", "a-group-not-granted"],
        secured.indexer,
        "GroupAuthorization",
        "docs/deploying.md",
    )


@pytest.mark.mongo
async def test_detections_are_stored_in_mongodb_over_tls_checked_against_its_authority(
    servers: Servers,
) -> None:
    verified = servers.infrastructure.ferretdb.tls_url.replace("/roadwatch?", f"/{unique('tls')}?")
    store = detection_store(verified)
    await store.open()
    try:
        await store.save([make_detection(), make_detection()])
        assert await store.count() == 2
    finally:
        await store.close()
    # Without the authority, the server's certificate is not trusted: said, not hung on.
    unverified = servers.settings.model_copy(
        update={"detections_db_url": verified.split("&tlsCAFile=")[0]}
    )
    with warnings.catch_warnings():
        # PyMongo's monitor leaves the socket of a failed TLS handshake to the garbage
        # collector (PyMongo 4.20): collected here, its warning would fail whichever test
        # happened to be running later.
        warnings.simplefilter("ignore", ResourceWarning)
        problems = await server_problems(unverified)
        gc.collect()
    assert len(problems) == 1, problems
    assert problems[0].startswith("MongoDB at 127.0.0.1:"), problems
    assert "TLS" in problems[0], problems
    assert "certificate verify failed" in problems[0], problems


async def test_topics_creates_what_is_missing_as_an_administrator_and_nothing_as_a_process(
    servers: Servers, secured: Secured
) -> None:
    kafka = servers.infrastructure.kafka
    names = {
        "detections_topic": unique("topics.detections"),
        "alerts_topic": unique("topics.alerts"),
        "dead_letter_topic": unique("topics.dlq"),
        "watchlists_topic": unique("topics.watchlists"),
        "webhooks_dead_letter_topic": unique("topics.webhooks"),
    }
    admin = servers.settings.model_copy(
        update={
            **names,
            "kafka_broker_url": kafka.secured_bootstrap,
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": ADMIN_USER,
            "kafka_sasl_password": SecretStr(kafka.password(ADMIN_USER)),
            "kafka_ssl_ca_file": servers.infrastructure.config.tls_dir / "ca.pem",
        }
    )
    created = await asyncio.to_thread(_run, ["topics"], admin)
    assert created.returncode == 0, created.stderr
    said = dict(line.split(": ", 1) for line in created.stdout.splitlines())
    assert said[names["detections_topic"]] == "created (6 partitions)"
    assert said[names["watchlists_topic"]] == (
        "created (1 partitions, cleanup.policy=compact, delete.retention.ms=86400000)"
    )
    again = await asyncio.to_thread(_run, ["topics"], admin)
    assert all(line.split(": ", 1)[1].startswith("exists") for line in again.stdout.splitlines())
    # Now there for the check every process makes at start.
    await check_kafka(admin, topics=list(names.values()))

    # A process's user may create nothing.
    process = secured.indexer.model_copy(update={"alerts_topic": unique("topics.more")})
    await asyncio.to_thread(
        _refuses, ["topics"], process, "TopicAuthorization", process.alerts_topic
    )


async def test_an_indexer_that_may_see_but_not_write_alerts_stops_at_the_first_with_one_line(
    servers: Servers, tmp_path: Path
) -> None:
    async with secured_deployment(
        servers, withheld=lambda grant: grant.operation == "Write" and "indexer" in grant.user
    ) as secured:
        # Without any right on the alerts topic, the check at start refuses (the tests above).
        # With Read on it, the check passes; with Write on the dead letters and on its
        # transactions, the producers start; then the broker refuses the first alert.
        user = secured.indexer.kafka_sasl_username or ""
        await servers.infrastructure.kafka.access().grant(
            [
                Grant(user, "Read", (secured.indexer.alerts_topic,)),
                Grant(user, "Write", (secured.indexer.dead_letter_topic,)),
                Grant(user, "Write", (), transactional_prefix=f"{secured.indexer_group}."),
            ]
        )
        suspicious = {"Year": 2011, "Make": "Toyota", "Model": "Land Cruiser", "Category": "SUV"}
        fatal = await _indexer_stops_on(secured, suspicious, log=tmp_path / "indexer.log")
        assert "TopicAuthorization" in fatal, fatal
        assert secured.indexer.alerts_topic in fatal, fatal


async def test_an_indexer_that_may_not_use_its_transactions_stops_with_one_line(
    servers: Servers, tmp_path: Path
) -> None:
    async with secured_deployment(
        servers, withheld=lambda grant: grant.transactional_prefix is not None
    ) as secured:
        sedan = {"Year": 2012, "Make": "Honda", "Model": "Civic", "Category": "Sedan"}
        fatal = await _indexer_stops_on(secured, sedan, log=tmp_path / "indexer.log")
        assert "TransactionalIdAuthorization" in fatal, fatal


async def _indexer_stops_on(secured: Secured, detection: dict[str, object], *, log: Path) -> str:
    """The one line an indexer exits 1 with, once a camera sends `detection`; it must not
    have tried again."""
    await _migrated(secured)
    indexer = await asyncio.to_thread(
        start_indexer_process, secured.indexer, group=secured.indexer_group, log=log
    )
    try:
        await _send_as_camera(secured.camera, [orjson.dumps(detection)])
        code = await asyncio.to_thread(indexer.wait, 60)
    finally:
        if indexer.poll() is None:
            indexer.kill()
    assert code == 1
    lines = (await asyncio.to_thread(log.read_text)).splitlines()
    fatal = [line for line in lines if line.startswith("roadwatch:")]
    assert len(fatal) == 1, lines
    assert not [line for line in lines if "trying again" in line]
    return fatal[0]
