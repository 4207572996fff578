"""`roadwatch up` (what `make up` runs) on a machine with nothing running yet."""

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.helpers.ports import free_port
from tests.helpers.processes import process_alive, running_pids

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow]


def test_up_starts_everything_serves_detections_and_ctrl_c_stops_it_all(
    isolated_env: dict[str, str], tmp_path: Path
) -> None:
    port, deliver_metrics = free_port(), free_port()
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "roadwatch",
                "up",
                "--port",
                str(port),
                "--metrics-port",
                str(free_port()),
                "--deliver-metrics-port",
                str(deliver_metrics),
            ],
            env={**isolated_env, "DETECTIONS_PER_SECOND": "50", "JWT_SECRET": "s" * 40},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
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

        with httpx.Client(base_url=base, timeout=10) as client:
            client.post("/users", json={"username": "admin", "password": "a long password"})
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
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(timeout=60)

    assert code == 0, log.read_text()[-3000:]
    for name, pid in pids.items():
        assert pid is None or not process_alive(pid), f"{name} outlived roadwatch up"


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
