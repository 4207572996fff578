import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from roadwatch.infra.tools import logged_child


def _start_time(pid: int) -> str | None:
    """The kernel's start time of `pid`, which tells a live server from a recycled pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    return fields[19]


def _signal(pid: int, signum: signal.Signals, *, group: bool = False) -> None:
    try:
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except ProcessLookupError:
        pass


@dataclass
class Daemon:
    """A server process that outlives its launcher, found again through a pid file."""

    name: str
    pid_file: Path
    log_file: Path
    stop_signal: signal.Signals = signal.SIGTERM
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def pid(self) -> int | None:
        try:
            pid_text, started = self.pid_file.read_text().split()
            pid = int(pid_text)
        except (OSError, ValueError):
            return None
        return pid if _start_time(pid) == started else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(
        self,
        argv: list[str],
        *,
        cwd: Path,
        env: dict[str, str] | None = None,
        user: str | None = None,
    ) -> None:
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        header = f" starting {self.name}"
        with logged_child(self.log_file, header, argv, cwd=cwd, env=env, user=user) as child:
            self._process = subprocess.Popen(argv, **child, start_new_session=True)
        started = _start_time(self._process.pid)
        self.pid_file.write_text(f"{self._process.pid} {started}\n")

    def exit_code(self) -> int | None:
        """The exit code of a process this object started and that has ended, else None."""
        return None if self._process is None else self._process.poll()

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the server (SIGTERM, then SIGKILL after `timeout`); False if none was running."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        _signal(pid, self.stop_signal)
        deadline = time.monotonic() + timeout
        while self._alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if self._alive(pid):
            # Each server leads its own session: SIGKILL takes its helper processes with it.
            _signal(pid, signal.SIGKILL, group=True)
            while self._alive(pid):
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> bool:
        """SIGKILL the server, as a crash would stop it; False if none was running."""
        pid = self.pid()
        if pid is None:
            return False
        _signal(pid, signal.SIGKILL, group=True)
        while self._alive(pid):
            time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def _alive(self, pid: int) -> bool:
        if self._process is not None and self._process.pid == pid:
            return self._process.poll() is None
        return _start_time(pid) is not None
