"""Where the indexer's own CPU goes, step by step: one `roadwatch indexer` into PostgreSQL
under bench/oncpu.py, each sample charged to the step it was taken in."""

from pathlib import Path
from typing import Any

from bench.indexer_throughput import indexer_rate
from bench.stack import LOGS, Bench, preloaded

# Checked from the innermost frame out: the first frame that names a step is the step (so
# deriving an id, called by the parser, is not parsing). A frame is "qualname (file:line)".
STEPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("starting: importing the code", ("<frozen importlib",)),
    ("deriving ids (SHA-1 of a record's place)", ("derived_id (",)),
    ("parsing and validating", ("parse_records (",)),
    ("reading records from Kafka", ("read_batch (", "Reader.read (", "/aiokafka/consumer/")),
    ("matching watchlist rules", ("MatchWatchlists.__call__ (",)),
    ("storing detections (COPY, one statement)", ("Persist.__call__ (",)),
    ("storing alerts and their history", ("RecordAlerts.__call__ (",)),
    (
        "publishing alerts, committing offsets (a transaction a partition)",
        (
            "PublishAlerts.__call__ (",
            "PendingAlerts.",
            "_Pending.",
            "PartitionTransactions.",
            "/aiokafka/producer/",
        ),
    ),
)
REST = "the event loop, the pipeline, metrics and the rest"
STARTING = STEPS[0][0]


def step_of(stack: list[str]) -> str:
    for frame in reversed(stack):
        for step, markers in STEPS:
            if any(marker in frame for marker in markers):
                return step
    return REST


def by_step(folded: str) -> dict[str, float]:
    """CPU seconds by step, from bench/oncpu.py's collapsed stacks (µs a line)."""
    spent = {step: 0.0 for step, _ in STEPS} | {REST: 0.0}
    for line in folded.splitlines():
        stack, _, microseconds = line.rpartition(" ")
        spent[step_of(stack.split(";"))] += int(microseconds) / 1e6
    return spent


async def measure(bench: Bench, *, count: int) -> dict[str, Any]:
    settings, _ = await preloaded(bench, count, seed=5)
    profile = (LOGS / "indexer.folded").resolve()
    async with bench.postgres_database() as url:
        run = await indexer_rate(
            settings.model_copy(update={"detections_db_url": url}), count, profile_to=profile
        )
    spent = by_step(profile.read_text())
    running = sum(seconds for step, seconds in spent.items() if step != STARTING)
    return {
        "detections": count,
        "per_second": round(run.per_second),
        # The indexer's CPU a row while it stored, as indexer_throughput measures it...
        "cpu_us_per_row": run.cpu_us_per_row,
        # ...and as the profiler counted it over the process's life, but for its start.
        "profiled_us_per_row": round(running / count * 1e6, 2),
        "steps_us_per_row": {
            step: round(seconds / count * 1e6, 2) for step, seconds in spent.items()
        },
        "profile": str(profile.relative_to(Path.cwd())),
    }


def render(x: dict[str, Any]) -> list[str]:
    steps = sorted(
        ((s, us) for s, us in x["steps_us_per_row"].items() if s != STARTING),
        key=lambda item: -item[1],
    )
    return [
        "",
        "## Where the indexer's CPU goes",
        "",
        f"One `roadwatch indexer` into PostgreSQL over {x['detections']:,} preloaded "
        "detections, under an on-CPU sampler (`bench/oncpu.py`: every millisecond of the "
        "process's own CPU time, its Python stack, charged to the step it is in; time in C "
        "goes to the Python frame that runs next). It stored "
        f"{x['per_second']:,} a second, its CPU {x['cpu_us_per_row']} µs a row while it "
        f"stored; the profile counts {x['profiled_us_per_row']} µs a row over the process's "
        f"life but its start ({x['steps_us_per_row'][STARTING]} µs a row importing the code). "
        f"The collapsed stacks: `{x['profile']}`.",
        "",
        "| step | CPU a row |",
        "|---|---|",
        *(f"| {step} | {us} µs |" for step, us in steps),
    ]
