"""`roadwatch up` (what `make up` runs) on a machine with nothing running yet."""

import asyncio
import json
import re
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from roadwatch.bootstrap.stores import detection_store
from roadwatch.stores.detection_store import DetectionStore
from tests.helpers.kafka import send_values, stream_settings
from tests.helpers.ports import free_port
from tests.helpers.processes import ROADWATCH, process_alive, running_pids, settings_env
from tests.helpers.servers import Servers, fresh_postgres_database
from tests.helpers.waiting import eventually

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]

BANNER = "roadwatch is up"
# How long `up`'s console is watched after its banner.
QUIET_FOR = 60.0


def test_up_starts_everything_serves_detections_and_ctrl_c_stops_it_all(
    isolated_env: dict[str, str], tmp_path: Path
) -> None:
    port, deliver_metrics = free_port(), free_port()
    log = tmp_path / "up.log"
    up = _start_up(
        {**isolated_env, "DETECTIONS_PER_SECOND": "50", "JWT_SECRET": "s" * 40},
        log=log,
        port=port,
        deliver_metrics=deliver_metrics,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: BANNER in log.read_text(), within=120, log=log, process=up)
        banner = time.monotonic()
        _wait_for(lambda: _status(f"{base}/readyz") == 200, within=120, log=log, process=up)
        assert "dashboard  http://127.0.0.1" in log.read_text()
        pids = running_pids(Path(isolated_env["ROADWATCH_HOME"]))
        assert pids["kafka"]
        assert pids["postgres"]
        assert pids["ferretdb"] is None, "FerretDB started though no MongoDB store is configured"
        # The webhook deliverer runs beside the indexer and the API.
        _wait_for(
            lambda: _status(f"http://127.0.0.1:{deliver_metrics}/readyz") == 200,
            within=60,
            log=log,
            process=up,
        )

        # While there is no user, the API prints the one-time link that creates the first.
        _wait_for(lambda: "?setup=" in log.read_text(), within=30, log=log, process=up)
        link = re.search(rf"{base}/\?setup=([\w-]+)", log.read_text())
        assert link is not None, log.read_text()[-3000:]
        with httpx.Client(base_url=base, timeout=10) as client:
            anyone = {"username": "mallory", "password": "a long password"}
            assert client.post("/users", json=anyone).status_code == 401
            created = client.post(
                "/users",
                json={"username": "admin", "password": "a long password"},
                headers={"X-Setup-Token": link[1]},
            )
            assert created.status_code == 201, created.text
            token = client.post(
                "/token", data={"username": "admin", "password": "a long password"}
            ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            _wait_for(
                lambda: client.get("/detections", headers=headers).json()["total"] > 20,
                within=60,
                log=log,
                process=up,
            )
        # A newcomer's console: a status line now and then, and nothing else going right.
        _wait_for(
            lambda: time.monotonic() - banner >= QUIET_FOR, within=QUIET_FOR, log=log, process=up
        )
        shown = _after_banner(log)
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(timeout=60)

    assert code == 0, log.read_text()[-3000:]
    assert len(shown) < 40, "\n".join(shown)
    statuses = [line for line in shown if line.startswith("status ")]
    assert len(statuses) >= 3, "\n".join(shown)
    assert statuses[-1].endswith("all ready"), statuses[-1]
    assert not [line for line in shown if "ERROR" in line or "Traceback" in line]
    for name, pid in pids.items():
        assert pid is None or not process_alive(pid), f"{name} outlived roadwatch up"


def _start_up(
    env: dict[str, str],
    *options: str,
    log: Path,
    port: int,
    deliver_metrics: int,
    indexer_metrics: int | None = None,
) -> subprocess.Popen[bytes]:
    """`roadwatch up` on these ports, its output in `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                *ROADWATCH,
                "up",
                *options,
                "--port",
                str(port),
                "--metrics-port",
                str(indexer_metrics or free_port()),
                "--deliver-metrics-port",
                str(deliver_metrics),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _after_banner(log: Path) -> list[str]:
    """The lines `up` printed after its banner (the blank line that ends it)."""
    text = log.read_text()
    return text[text.index(BANNER) :].split("\n\n", 1)[1].splitlines()


def _status(url: str) -> int:
    try:
        return httpx.get(url, timeout=2).status_code
    except httpx.TransportError:
        return 0


def _wait_for(
    condition: Callable[[], bool], *, within: float, log: Path, process: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            raise AssertionError(
                f"roadwatch up exited with {process.returncode}:\n{log.read_text()}"
            )
        time.sleep(0.5)
    raise AssertionError(f"not within {within} s; log:\n{log.read_text()[-3000:]}")


async def test_up_against_servers_it_did_not_start_starts_none_and_runs_on_them(
    servers: Servers, tmp_path: Path
) -> None:
    async with fresh_postgres_database(servers) as database:
        settings = await stream_settings(servers, store_url=database)
        settings = settings.model_copy(update={"users_db_url": database})
        home = tmp_path / "home"
        port, indexer_metrics, deliver_metrics = free_port(), free_port(), free_port()
        env = {
            **settings_env(settings),
            "ROADWATCH_HOME": str(home),
            "ROADWATCH_PROVISION": "false",
            "JWT_SECRET": "s" * 40,
        }
        before = running_pids(servers.infrastructure.config.home)
        log = tmp_path / "up.log"
        up = await asyncio.to_thread(
            _start_up,
            env,
            "--no-producer",
            log=log,
            port=port,
            deliver_metrics=deliver_metrics,
            indexer_metrics=indexer_metrics,
        )
        ports = (
            f"--port={port}",
            f"--metrics-port={indexer_metrics}",
            f"--deliver-metrics-port={deliver_metrics}",
        )
        try:
            base = f"http://127.0.0.1:{port}"
            await asyncio.to_thread(
                _wait_for,
                lambda: _status(f"{base}/readyz") == 200,
                within=120,
                log=log,
                process=up,
            )
            await asyncio.to_thread(
                _wait_for,
                lambda: _status(f"http://127.0.0.1:{deliver_metrics}/readyz") == 200,
                within=60,
                log=log,
                process=up,
            )
            assert running_pids(home) == {"postgres": None, "ferretdb": None, "kafka": None}
            await send_values(
                settings.kafka_broker_url,
                settings.detections_topic,
                [b'{"Year": 2011, "Make": "Toyota", "Model": "Up", "Category": "SUV"}'],
            )
            store = detection_store(database)
            await store.open()
            try:
                await eventually(lambda: _count_is(store, 1), within=60, what="indexed")
            finally:
                await store.close()
            # `roadwatch status` finds every part ready, and the broker's view of the flow.
            answer = await asyncio.to_thread(_roadwatch_status, env, *ports)
            assert answer.returncode == 0, answer.stdout + answer.stderr
            found = json.loads(answer.stdout)
            assert found["ready"] is True
            assert {p["name"] for p in found["processes"]} == {"api", "indexer", "deliver"}
            assert found["lag"]["roadwatch-indexer"] == 0
            assert found["stored_per_second"] == 0
            assert found["dead_letters_last_hour"] == {
                settings.dead_letter_topic: {},
                settings.webhooks_dead_letter_topic: {},
            }
            assert found["webhooks"]["subscriptions"] == 0
        finally:
            up.send_signal(signal.SIGINT)
            code = await asyncio.to_thread(up.wait, 60)
        assert code == 0, log.read_text()[-3000:]
        assert running_pids(servers.infrastructure.config.home) == before
        # With the processes gone, it says so, and fails.
        answer = await asyncio.to_thread(_roadwatch_status, env, *ports)
        assert answer.returncode == 1, answer.stdout + answer.stderr
        found = json.loads(answer.stdout)
        assert found["ready"] is False
        assert {p["name"] for p in found["processes"] if not p["ready"]} == {
            "api",
            "indexer",
            "deliver",
        }
        assert all(s["ready"] for s in found["servers"]), found["servers"]


def _roadwatch_status(env: dict[str, str], *options: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [*ROADWATCH, "status", "--json", "--window=1", *options],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def _count_is(store: DetectionStore, count: int) -> bool:
    return await store.count() == count


def test_up_names_each_server_elsewhere_that_fails_in_one_line_and_starts_nothing(
    servers: Servers, isolated_env: dict[str, str], tmp_path: Path
) -> None:
    postgres = urlsplit(servers.postgres_url)
    wrong_password = servers.postgres_url.replace(f":{postgres.password}@", ":not-the-password@")
    closed = f"127.0.0.1:{free_port()}"
    done = subprocess.run(
        [*ROADWATCH, "up", "--no-producer", "--port", str(free_port())],
        env={
            **isolated_env,
            # Servers other than this stack's own: `up` checks them, and starts none.
            "KAFKA_BROKER_URL": closed,
            "DETECTIONS_DB_URL": wrong_password,
            "USERS_DB_URL": wrong_password,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("roadwatch:")]
    assert len(lines) == 2, done.stderr
    assert any(f"Kafka at {closed}: TCP" in line for line in lines), lines
    assert any("PostgreSQL at" in line and "authentication" in line for line in lines), lines
    assert "not-the-password" not in done.stderr
    assert running_pids(Path(isolated_env["ROADWATCH_HOME"])) == {
        "postgres": None,
        "ferretdb": None,
        "kafka": None,
    }
