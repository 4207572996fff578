"""A roadwatch process as its own HTTP endpoints tell it: /readyz, and /metrics read back
into numbers."""

import asyncio
import json
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from roadwatch.text import printable

# A status is for now: a process that takes longer than this to answer is reported so.
ANSWER_WITHIN = 3.0
# The most of a /readyz answer that is read: roadwatch's are a few hundred bytes.
MOST_READINESS_BYTES = 64 * 1024
# The most of a /metrics page that is read: roadwatch's own are a few kilobytes.
MOST_METRICS_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Samples:
    """Every sample of a /metrics page: (name, sorted labels) → value."""

    values: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    def total(self, name: str, **labels: str) -> float | None:
        """The sum of the samples of that name whose labels include `labels`; None if the
        page has none."""
        wanted = set(labels.items())
        found = [
            value
            for (sample, sample_labels), value in self.values.items()
            if sample == name and wanted <= set(sample_labels)
        ]
        return sum(found) if found else None

    def by_label(self, name: str, label: str) -> dict[str, float]:
        totals: dict[str, float] = {}
        for (sample, labels), value in self.values.items():
            if sample == name:
                key = dict(labels).get(label, "")
                totals[key] = totals.get(key, 0.0) + value
        return totals


def parse_metrics(text: str) -> Samples | None:
    """The samples of a /metrics page; None if it is not one."""
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    # The parser's errors are not one class; whatever is on that port, this is no answer.
    except Exception:
        return None
    return Samples(values)


@dataclass(frozen=True)
class Answer:
    ready: bool
    problem: str | None
    samples: Samples | None


async def ask(session: aiohttp.ClientSession, base: str) -> Answer:
    """Whether the process at `base` is ready, and its metrics; never raises."""
    try:
        async with asyncio.timeout(ANSWER_WITHIN):
            async with session.get(f"{base}/readyz") as answer:
                body = json.loads(await _body(answer, MOST_READINESS_BYTES))
                ready = (
                    answer.status == 200 and isinstance(body, dict) and body.get("ready") is True
                )
                problem = None if ready else _why_not(body)
            async with session.get(f"{base}/metrics") as answer:
                text = (await _body(answer, MOST_METRICS_BYTES)).decode(errors="replace")
                samples = parse_metrics(text) if answer.status == 200 else None
    except TimeoutError:
        return Answer(False, f"no answer within {ANSWER_WITHIN:.0f} s", None)
    except (aiohttp.ClientError, OSError, ValueError) as error:
        return Answer(False, _brief(error), None)
    return Answer(ready, problem, samples)


async def _body(answer: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most `limit` bytes of the answer's body, however much it sends."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in answer.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size >= limit:
            break
    return b"".join(chunks)[:limit]


def _why_not(body: object) -> str:
    checks = body.get("checks") if isinstance(body, dict) else None
    if isinstance(checks, dict):
        failing = [f"{name}: {state}" for name, state in checks.items() if state != "ok"]
        if failing:
            return printable("; ".join(failing), limit=300)
    return "not ready"


def _brief(error: BaseException) -> str:
    if isinstance(error, aiohttp.ClientConnectorError):
        return "not running (connection refused)"
    return printable(f"{type(error).__name__}: {error}", limit=200)
