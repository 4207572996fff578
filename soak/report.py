"""A soak's report in Markdown: the load, the faults on a timeline with the recovery from
each, and every invariant with its figure."""

from datetime import UTC, datetime

from soak.load import FAILING_SHARE, SLOW_SECONDS
from soak.run import SoakResult


def _seconds(value: float | None) -> str:
    return "not recovered" if value is None else f"{value:.1f}"


def report(result: SoakResult) -> str:
    plan, produced = result.plan, result.produced
    lines = [
        f"Run on {datetime.now(UTC):%Y-%m-%d}: {plan.seconds:.0f} s at "
        f"{plan.rate:,.0f} detections/s, seed {plan.seed}. "
        f"{'Every invariant held.' if result.held else '**Not every invariant held.**'}",
        "",
        f"- **Load:** {produced.sent:,} detections sent, {produced.acknowledged:,} "
        f"acknowledged, {produced.failed:,} failed at the producer, and {result.bad_sent:,} "
        f"records that are no detection; {plan.indexers} indexers, "
        f"{plan.apis} API processes with {plan.sse_clients} SSE clients, {plan.deliverers} "
        f"deliverers posting to 3 receivers (steady; failing {FAILING_SHARE:.0%} of requests; "
        f"answering after {SLOW_SECONDS} s), on 3 Kafka brokers.",
        "- **Drain:** "
        + (
            f"everything stored and delivered {result.drained:.1f} s after the load stopped."
            if result.drained is not None
            else f"not everything was stored and delivered within {plan.drain_limit:.0f} s."
        ),
        "",
        "| at (s) | fault | target | out for (s) | recovered in (s) |",
        "|---:|---|---|---:|---:|",
    ]
    for fault in result.faults:
        lines.append(
            f"| {fault.began:.1f} | {fault.planned.kind} | {fault.target} | "
            f"{fault.repaired - fault.began:.1f} | {_seconds(fault.recovery)} |"
        )
    lines += [
        "",
        "Recovered: every process ready, and every detection acknowledged before the repair "
        "stored, timed from the repair.",
        "",
        "| invariant | held | figure |",
        "|---|---|---|",
    ]
    for invariant in result.invariants:
        lines.append(
            f"| {invariant.name} | {'yes' if invariant.held else '**no**'} | {invariant.figure} |"
        )
    return "\n".join(lines) + "\n"
