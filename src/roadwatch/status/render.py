"""A Snapshot for people: a table for `roadwatch status`, one line for `roadwatch up`."""

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from roadwatch.status.snapshot import Snapshot


def summary(status: Snapshot) -> str:
    """One line: rates in and out, lag, alerts, dead letters, and what is not ready."""
    lag = sum(value or 0 for value in status.lag.values())
    letters = sum(sum(reasons.values()) for reasons in status.dead_letters_last_hour.values())
    more = "+" if status.dead_letters_counted_in_part else ""
    ready = (
        "all ready"
        if status.ready
        else "NOT READY: " + ", ".join(part.name for part in status.not_ready)
    )
    return (
        f"{_rate(status.published_per_second)} published/s, "
        f"{_rate(status.stored_per_second)} stored/s, lag {lag:,}, "
        f"{_count(status.alerts_last_minute)} alerts in the last minute, "
        f"{letters:,}{more} dead letters in the last hour; {ready}"
    )


def show(status: Snapshot, console: Console) -> None:
    parts = Table(title="roadwatch", title_justify="left")
    for column in ("part", "ready", "problem"):
        parts.add_column(column)
    for part in [*status.servers, *status.processes]:
        mark = "[green]ready[/]" if part.ready else "[red]not ready[/]"
        parts.add_row(escape(part.name), mark, escape(part.problem or ""))
    console.print(parts)

    flow = Table(show_header=False, box=None)
    flow.add_column(style="bold")
    flow.add_column()
    flow.add_row("published", f"{_rate(status.published_per_second)} detections/s")
    flow.add_row("stored", f"{_rate(status.stored_per_second)} detections/s")
    for group, lag in status.lag.items():
        shown = "nothing committed yet" if lag is None else f"{lag:,}"
        flow.add_row(escape(f"lag of {group}"), shown)
    flow.add_row("alerts", f"{_count(status.alerts_last_minute)} in the last minute")
    for topic, reasons in status.dead_letters_last_hour.items():
        more = " (at least)" if topic in status.dead_letters_counted_in_part else ""
        counted = ", ".join(f"{n:,} {reason}" for reason, n in reasons.items()) or "none"
        flow.add_row(
            escape(f"dead letters on {topic}"), escape(f"{counted} in the last hour{more}")
        )
    if status.webhooks is not None:
        hooks = status.webhooks
        attempts = ", ".join(f"{n:,.0f} {result}" for result, n in hooks.attempts.items() if n)
        flow.add_row(
            "webhooks",
            f"{hooks.subscriptions} subscription(s), {hooks.retry_queue:,} waiting for a retry"
            + (f" (oldest {hooks.oldest_pending_seconds:,.0f} s)" if hooks.retry_queue else "")
            + (f"; just now: {attempts}" if attempts else ""),
        )
    for what, why in status.unknown.items():
        flow.add_row(escape(what), f"[yellow]unknown[/]: {escape(why)}")
    console.print(flow)


def _rate(value: float | None) -> str:
    return "?" if value is None else f"{value:,.0f}"


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"
