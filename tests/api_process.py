"""The API as its own process, on a port of its own, as `roadwatch api` runs it."""

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from roadwatch.settings import Settings
from tests.streams import settings_env

# Long enough for HS512 too, so that a test can forge such a token without a key warning.
TEST_JWT_SECRET = "test-secret-" + "0123456789abcdef" * 4


@dataclass
class ApiProcess:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> bool:
        """SIGTERM; True if the server shut down cleanly (uvicorn re-raises the signal after
        its graceful shutdown, so the exit code is -SIGTERM either way)."""
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return False
        return "Application shutdown complete" in self.log.read_text()


def start_api(settings: Settings, *, port: int, log: Path, within: float = 60) -> ApiProcess:
    env = {**settings_env(settings), "JWT_SECRET": TEST_JWT_SECRET}
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "roadwatch", "api", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    api = ApiProcess(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited with {process.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{api.url}/readyz", timeout=2).status_code == 200:
                return api
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    api.stop()
    raise RuntimeError(f"the API was not ready within {within} s: {log.read_text()}")
