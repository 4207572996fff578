from pathlib import Path

from roadwatch.errors import RoadwatchError


class InfraError(RoadwatchError):
    """A local server could not be provisioned, started or reached."""

    def __init__(self, service: str, reason: str, log: Path | None = None) -> None:
        super().__init__(service, reason, log)
        self.service = service
        self.reason = reason
        self.log = log

    def __str__(self) -> str:
        where = f" (log: {self.log})" if self.log else ""
        return f"{self.service}: {self.reason}{where}"
