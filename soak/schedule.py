"""The soak's faults, planned from a seed: what happens to what, and when.

Faults run on tracks, each in its own order: one per kind of process (a process is killed
again only after it has been started again), one for PostgreSQL, and one for the brokers.
Tracks overlap freely, so a broker may be down while an indexer restarts and PostgreSQL is
stopped. The brokers' track keeps one broker out at a time: with two of three out the
quorum is lost and Kafka refuses every write by design (tests/integration/
test_kafka_cluster.py shows the refusal).
"""

import random
from dataclasses import dataclass

PROCESS_ROLES = ("indexer", "api", "deliverer")
POSTGRES_DOWN = 10.0
BROKER_DOWN = 30.0
# Faults begin after this share of the run and before this share: the rest is for the
# system to settle before the load stops.
BEGIN, END = 0.08, 0.72


@dataclass(frozen=True)
class Planned:
    at: float
    track: str
    kind: str
    # Which member of the track (a process's index, a broker's node); for the active
    # controller, found when the fault comes.
    target: int
    # Seconds out of service.
    down: float


def plan(seconds: float, seed: int, *, members: dict[str, int], brokers: int) -> list[Planned]:
    rng = random.Random(seed)
    first, last = seconds * BEGIN, seconds * END
    planned: list[Planned] = []
    kills = max(2, round(seconds / 60))
    for role in PROCESS_ROLES:
        for at in sorted(rng.uniform(first, last) for _ in range(kills)):
            target = rng.randrange(members[role])
            planned.append(Planned(at, role, f"kill -9 {role}", target, rng.uniform(1, 5)))
    at = first + rng.uniform(0, 0.15 * (last - first))
    while at < last:
        planned.append(Planned(at, "postgres", "postgres stopped", 0, POSTGRES_DOWN))
        at += POSTGRES_DOWN + rng.uniform(60, 150)
    at = first + rng.uniform(0, 0.1 * (last - first))
    kinds = ["broker killed", "controller restarted"]
    rng.shuffle(kinds)
    turn = 0
    while at < last:
        kind = kinds[turn % 2]
        down = BROKER_DOWN if kind == "broker killed" else 0.0
        planned.append(Planned(at, "brokers", kind, rng.randrange(1, brokers + 1), down))
        # A broker takes some seconds to start and catch up before the next may go.
        at += down + rng.uniform(15, 30)
        turn += 1
    return sorted(planned, key=lambda fault: fault.at)
