"""How the system stood at one moment: what `roadwatch status` shows, and `roadwatch up`
sums up in one line."""

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Part:
    """A server or a process, and whether it is ready (with why not)."""

    name: str
    where: str
    ready: bool
    problem: str | None = None


@dataclass(frozen=True)
class WebhookHealth:
    subscriptions: int
    retry_queue: int
    oldest_pending_seconds: float
    # Attempts made while the snapshot was taken, by result.
    attempts: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Snapshot:
    servers: list[Part]
    processes: list[Part]
    # Records not yet committed, per consumer group; None: the group has committed nothing.
    lag: dict[str, int | None]
    published_per_second: float | None
    stored_per_second: float | None
    alerts_last_minute: int | None
    # Per dead-letter topic, how many records in the last hour, by reason.
    dead_letters_last_hour: dict[str, dict[str, int]]
    # Topics whose letters were too many to read all: their counts are lower bounds.
    dead_letters_counted_in_part: list[str] = field(default_factory=list)
    webhooks: WebhookHealth | None = None
    # What could not be asked, and why: the broker refused, a process had no metrics.
    unknown: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(part.ready for part in [*self.servers, *self.processes])

    @property
    def not_ready(self) -> list[Part]:
        return [part for part in [*self.servers, *self.processes] if not part.ready]

    def to_json(self) -> dict[str, Any]:
        return {"ready": self.ready, **asdict(self)}
