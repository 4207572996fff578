"""Writes a benchmark run as JSON and as the markdown table in docs/benchmarks.md."""

import os
import platform
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson

from bench import (
    alerts_in_rows,
    connect_sink,
    count_history,
    growth,
    indexer_profile,
    indexer_throughput,
    many_days,
    partitions,
    reader_cost,
)
from roadwatch.infra.ferretdb import FERRETDB_VERSION
from roadwatch.infra.kafka import KAFKA_VERSION


def machine() -> dict[str, Any]:
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kafka": KAFKA_VERSION,
        "ferretdb": FERRETDB_VERSION,
        "aiokafka": version("aiokafka"),
        "asyncpg": version("asyncpg"),
        "pymongo": version("pymongo"),
    }


def write(results: dict[str, Any], *, folder: Path, markdown: Path) -> Path:
    """A whole run: its results as JSON, and docs/benchmarks.md."""
    path, stamped = _saved(results, folder=folder, name="")
    markdown.write_text(render(stamped))
    return path


def write_part(results: dict[str, Any], *, folder: Path, steps: list[str]) -> Path:
    """The results of some steps run alone, beside the whole runs' (not rendered)."""
    return _saved(results, folder=folder, name="-" + "-".join(steps))[0]


def _saved(results: dict[str, Any], *, folder: Path, name: str) -> tuple[Path, dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    results = {**results, "measured_at": now.isoformat(timespec="seconds")}
    path = folder / f"{now.strftime('%Y%m%dT%H%M%SZ')}{name}.json"
    path.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return path, results


def _rate_row(name: str, detections: int, rate: dict[str, Any], bare: dict[str, Any]) -> str:
    return (
        f"| {name} | {detections:,} | {rate['median']:,} | {rate['min']:,}–{rate['max']:,} | "
        f"{rate['runs']} | {rate['median'] / bare['median']:.2f} |"
    )


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def render(r: dict[str, Any]) -> str:
    m = r["machine"]
    stamp = r.get("measured_at", "")[:16].replace("T", " ") + " UTC"
    t = r["indexer_throughput"]
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `make bench` on {stamp}: {m['cores']} cores, {m['memory_gib']} GiB, shared "
        f"by the broker (Kafka {m['kafka']}), the databases (PostgreSQL, FerretDB "
        f"{m['ferretdb']}) and roadwatch (Python {m['python']}, aiokafka {m['aiokafka']}, "
        f"asyncpg {m['asyncpg']}, PyMongo {m['pymongo']}). Figures are medians over the runs "
        "named, with the range beside them. Raw results: `bench/results/`.",
        "",
        "## Indexer throughput",
        "",
        f"A topic of 6 partitions preloaded with {t['detections']:,} detections; one "
        "`roadwatch indexer` process stores them (and publishes their alerts), timed from its "
        "first stored detection to its last. The MongoDB run times the first "
        f"{t.get('mongo', {}).get('detections', 0):,}.",
        "",
        "Beside it, ceilings measured in the same run: a bare consumer that only reads and "
        "decodes the topic; the store alone, saving the same detections handed to it in ready "
        f"batches of {t.get('store_batch', 5000):,}, the indexer's largest, as many at once as it "
        "runs; and the store alone making the "
        "same writes as the indexer, each batch's alerts kept after it "
        f"({t.get('alerting_share', 0):.0%} of the detections alert, under the one rule "
        f"`SUSPICIOUS_VEHICLE={t.get('suspicious_vehicle', 'SUV')}`).",
        "",
        "| consumer | detections | per second (median) | range | runs | vs bare consumer "
        "| vs store alone | vs the same writes | peak RSS | indexer's CPU a row |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    bare = t["bare_consumer_per_second"]
    lines.append(
        f"| bare consumer (read + decode only) | {t['detections']:,} | {bare['median']:,} | "
        f"{bare['min']:,}–{bare['max']:,} | {bare['runs']} | 1.00 | – | – | – | – |"
    )
    for backend in ("postgres", "mongo"):
        if backend in t:
            b = t[backend]
            alone = b["store_alone_per_second"]
            lines.append(
                _rate_row(f"{backend} store alone (ready batches)", b["detections"], alone, bare)
                + " 1.00 | – | – | – |"
            )
            same = b.get("store_same_writes_per_second")
            if same:
                name = f"{backend} store alone, with the alerts"
                lines.append(
                    _rate_row(name, b["detections"], same, bare)
                    + f" {same['median'] / alone['median']:.2f} | 1.00 | – | – |"
                )
            same_writes = _ratio(b.get("ratio_to_store_same_writes"))
            lines.append(
                _rate_row(f"indexer → {backend}", b["detections"], b["per_second"], bare)
                + f" {b['ratio_to_store_alone']:.2f} | {same_writes} "
                f"| {b['peak_rss_mb']} MB | {b['indexer_cpu_us_per_row']['median']} µs |"
            )
    lines += indexer_throughput.render_cpu(t)
    if "indexer_profile" in r:
        lines += indexer_profile.render(r["indexer_profile"])
    if "watchlists" in r:
        w = r["watchlists"]
        rule_runs = {int(k[6:]): v for k, v in w["throughput"].items() if k.startswith("rules_")}
        lines += [
            "",
            "## Watchlists",
            "",
            f"The indexer into PostgreSQL over {w['throughput']['detections']:,} preloaded "
            "detections, with the seed rule alone and with 10,000 rules of mixed fields (make "
            "and model, with and without years; make and years; category and make; model and "
            "years; category and years). Like a real hot list, most of them name vehicles that "
            "the stream does not carry, and 1 in 200 a catalog vehicle of one year: the alerts "
            "stay about as many, so the comparison measures matching. Runs alternate between "
            "the rule sets. The last column is matching alone, for a vehicle not met before; "
            "the answer is then remembered.",
            "",
            "| rules | per second (median) | range | runs | vs 1 rule | detections alerting "
            "| matching a vehicle not met before |",
            "|---|---|---|---|---|---|---|",
            *(
                f"| {n:,} | {v['per_second']['median']:,} | {v['per_second']['min']:,}–"
                f"{v['per_second']['max']:,} | {v['per_second']['runs']} | "
                f"{v['ratio_to_fewest_rules']:.2f} | {v['alerting_share']:.1%} | "
                f"{v['match_us_per_new_vehicle']} µs |"
                for n, v in sorted(rule_runs.items())
            ),
        ]
        f = w["rule_to_first_alert"]
        lines += [
            "",
            f"From `POST /watchlists` to the first alert under the new rule on an `/alerts` "
            f"stream, {f['trials']} rules one after another, while detections flow at "
            f"{f['detections_per_second']:,.0f}/s, a tenth of them vehicles the new rules match "
            "(so up to 10 ms of each figure is the wait for the next such vehicle): "
            f"p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms, max {f['max_ms']} ms.",
        ]
    if "alert_latency" in r:
        a = r["alert_latency"]
        lines += [
            "",
            "## Alert latency",
            "",
            f"{a['alerts']} suspicious detections, one every 100 ms, under a background load "
            f"of {a['background_per_second']:,.0f} detections/s; from the producer's send to the "
            "event's arrival on an `/alerts` stream.",
            "",
            "| p50 | p99 | max | received |",
            "|---|---|---|---|",
            f"| {a['p50_ms']} ms | {a['p99_ms']} ms | {a['max_ms']} ms | "
            f"{a['received']}/{a['alerts']} |",
        ]
        if "hops" in a:
            lines += [
                "",
                "Where the time goes, hop by hop, from moments seen outside the processes "
                "(`bench/alert_latency.py` says what each hop holds):",
                "",
                "| hop | p50 | p99 | max |",
                "|---|---|---|---|",
                *(
                    f"| {name} | {h['p50_ms']} ms | {h['p99_ms']} ms | {h['max_ms']} ms |"
                    for name, h in a["hops"].items()
                ),
            ]
        if "store_write_at_most_ms" in a:
            w = a["store_write_at_most_ms"]
            lines += [
                "",
                f"Within the indexer hop, the store's write of a batch (the indexer's histogram, "
                f"to its bucket bounds): p50 at most {w['p50']:g} ms, p99 at most {w['p99']:g} ms.",
            ]
    if "transactions" in r:
        lines += transactions_section(r["transactions"])
    if "partitions" in r:
        lines += partitions.section(r["partitions"])
    if "connect_sink" in r:
        lines += connect_sink.section(r["connect_sink"])
    if "alerts_in_rows" in r:
        lines += alerts_in_rows.section(r["alerts_in_rows"])
    if "growth" in r:
        lines += growth.section(r["growth"])
    if "count_history" in r:
        lines += count_history.section(r["count_history"])
    if "many_days" in r:
        lines += many_days.section(r["many_days"])
    if "api_scale" in r:
        s = r["api_scale"]
        deep = next(key for key in s if key.startswith("skip_"))
        cursor = next(key for key in s if key.startswith("cursor_at_"))
        lines += [
            "",
            "## API at scale",
            "",
            f"{s['detections']:,} detections in PostgreSQL (stored at "
            f"{s['fill_per_second']:,}/s by the store's batch save, each with an alert in the "
            "history, of one or two of 100 rules; then `ANALYZE`, as a running database has "
            "statistics); one API process; requests one after another on a kept-alive "
            "connection.",
            "",
            "| request | p50 | p99 |",
            "|---|---|---|",
            f"| `/stats` | {s['stats']['p50_ms']} ms | {s['stats']['p99_ms']} ms |",
            f"| `/detections` first page | {s['first_page']['p50_ms']} ms | "
            f"{s['first_page']['p99_ms']} ms |",
            f"| `/detections?skip={deep[5:]}` | {s[deep]['p50_ms']} ms | {s[deep]['p99_ms']} ms |",
            f"| `/detections?cursor=…` at depth {cursor[10:]} | {s[cursor]['p50_ms']} ms | "
            f"{s[cursor]['p99_ms']} ms |",
            *(
                f"| {label} | {s[key]['p50_ms']} ms | {s[key]['p99_ms']} ms |"
                for key, label in (
                    ("history_first_page", "`/alerts/history` first page"),
                    ("history_one_rule", "`/alerts/history?rule=…` first page"),
                    (
                        "history_one_rule_halfway",
                        "`/alerts/history?rule=…&cursor=…` halfway down the rule's alerts",
                    ),
                )
                if key in s
            ),
        ]
        lines += _side_by_side(s) + _two_workers(s)
    if "time_windows" in r:
        lines += _time_windows(r["time_windows"])
    if "secured" in r:
        lines += _secured(r["secured"])
    if "reader_cost" in r:
        lines += reader_cost.render(r["reader_cost"])
    if "fanout" in r:
        f = r["fanout"]
        lines += [
            "",
            "## Fan-out",
            "",
            f"{f['clients']} `/alerts` clients on one API process, {f['alerts']} alerts at 10/s.",
            "",
            "| clients with every alert | p50 | p99 | max | API peak RSS |",
            "|---|---|---|---|---|",
            f"| {f['clients_with_every_alert']}/{f['clients']} | {f['p50_ms']} ms | "
            f"{f['p99_ms']} ms | {f['max_ms']} ms | {f['api_peak_rss_mb']} MB |",
        ]
    if "webhooks" in r:
        lines += [
            "",
            "## Webhooks",
            "",
            "`roadwatch deliver` POSTing alerts to 10 subscriptions, each a local receiver "
            "(a minimal HTTP/1.1 server in the benchmark's process), for 15 s of alerts. "
            "Latency: from the alert's send to the broker to its POST's arrival, over the "
            "receivers that answer at once; a delivery still missing a minute after the last "
            "alert counts as not made. In the second scenario one receiver answers only after "
            "10 s (the timeout) and another always with 500.",
            "",
            "| scenario | alerts/s | deliveries/s | processes | made | duplicates | p50 | p99 "
            "| max | peak RSS |",
            "|---|---|---|---|---|---|---|---|---|---|",
            *(
                f"| {w['scenario']} | {w['rate']:,} | {w['rate'] * w['subscriptions']:,} | "
                f"{w['deliver_processes']} | {w['deliveries_made_to_well_receivers']:,}/"
                f"{w['deliveries_expected_to_well_receivers']:,} | {w['duplicates']} | "
                f"{w['p50_ms']} ms | {w['p99_ms']} ms | {w['max_ms']} ms | "
                f"{w['deliver_peak_rss_mb']} MB |"
                for w in r["webhooks"]
            ),
        ]
    if "api_abuse" in r:
        lines += [
            "",
            "## The API under floods",
            "",
            "wrk with 50 connections for 10 s a flood, while /healthz is asked every 20 ms and "
            "the API's resident memory sampled every 50 ms. Logins come from a new address and "
            "name each, so that only the hashing bounds them; usernames of 60 KB are not a name "
            "any user could have; bodies of 1 MiB are refused (413) before they are read.",
            "",
            "| flood | requests/s | RSS before → peak → after | /healthz p50 | p99 | max |",
            "|---|---|---|---|---|---|",
            *(
                f"| {name} | {f['requests_per_second']:,} | {f['rss_before_mb']:.0f} → "
                f"{f['rss_peak_mb']:.0f} → {f['rss_after_mb']:.0f} MB | {f['healthz_p50_ms']} ms "
                f"| {f['healthz_p99_ms']} ms | {f['healthz_max_ms']} ms |"
                for name, f in r["api_abuse"].items()
            ),
        ]
    if "producer_rate" in r:
        pr = r["producer_rate"]
        lines += [
            "",
            "## Producer rate",
            "",
            f"`roadwatch produce --rate R` for {pr['seconds_each']:.0f} s each, counting "
            "acknowledged detections.",
            "",
            "| asked per second | achieved | error |",
            "|---|---|---|",
            *(
                f"| {row['asked']:,} | {row['achieved']:,} | {row['error_pct']:+.2f}% |"
                for row in pr["rates"]
            ),
        ]
    return "\n".join(lines) + "\n"


def transactions_section(x: dict[str, Any]) -> list[str]:
    """Exactly-once alerts against at-least-once, from `bench/transactions.py`."""
    once, least = x["exactly_once_per_second"], x["at_least_once_per_second"]
    late_once, late_least = x["alert_latency_exactly_once"], x["alert_latency_at_least_once"]
    return [
        "",
        "## Exactly-once alerts",
        "",
        f"The indexer into PostgreSQL over {x['detections']:,} preloaded detections "
        f"({x['suspicious_share']:.0%} of them alerting), with each batch's alerts and offsets "
        "committed in one Kafka transaction a partition (`ALERTS_EXACTLY_ONCE`, the default), "
        "and without (alerts published, then offsets committed: at least once). Runs take "
        "turns. Then an alert's latency from camera to dashboard both ways, as in *Alert "
        "latency*.",
        "",
        "| alerts | per second (median) | range | runs | alert p50 | alert p99 |",
        "|---|---|---|---|---|---|",
        f"| at least once | {least['median']:,} | {least['min']:,}–{least['max']:,} | "
        f"{least['runs']} | {late_least['p50_ms']} ms | {late_least['p99_ms']} ms |",
        f"| exactly once | {once['median']:,} | {once['min']:,}–{once['max']:,} | "
        f"{once['runs']} | {late_once['p50_ms']} ms | {late_once['p99_ms']} ms |",
        "",
        f"Throughput with transactions: {x['throughput_ratio']:.2f} of without.",
    ]


def _time_windows(t: dict[str, Any]) -> list[str]:
    again = t.get("measured_at")
    return [
        "",
        "## Questions in time",
        "",
        *([f"(Run again on its own, {again[:16].replace('T', ' ')} UTC.)", ""] if again else []),
        f"{t['detections']:,} detections in PostgreSQL, evenly over {t['days']} days in time "
        f"order, one in ten with an alert (stored at {t['fill_per_second']:,}/s by the store's "
        "batch save, two batches at once, with partitions by day and the counts over time; "
        "then `ANALYZE`); one API process; requests one after another on a kept-alive "
        "connection.",
        "",
        "| request | p50 | p99 |",
        "|---|---|---|",
        *(
            f"| {name}: `{m['path']}` | {m['p50_ms']} ms | {m['p99_ms']} ms |"
            for name, m in t["requests"].items()
        ),
        "",
        *_removing_a_day(t),
    ]


def _removing_a_day(t: dict[str, Any]) -> list[str]:
    return [
        f"Removing the oldest day ({t['ids_released']:,} detections), in the store's two "
        f"steps: releasing the day's ids took {t['release_ids_seconds']} s, in transactions "
        "of 25,000 that lock only those rows, and the slowest `/stats` of one hour asked "
        f"meanwhile, one after another, took {t['slowest_stats_during_release_ms']} ms. "
        f"Dropping the day (its counts, then its partitions, the tables locked) took "
        f"{t['drop_one_day_seconds']} s, the slowest `/stats` meanwhile "
        f"{t['slowest_stats_during_drop_ms']} ms. Afterwards `/stats` "
        f"{'equalled' if t['stats_exact_after_drop'] else 'did NOT equal'} a group-by over "
        "what is stored.",
    ]


def _secured(s: dict[str, Any]) -> list[str]:
    plain, secured = s["plain_text"]["per_second"], s["sasl_ssl_and_verify_full"]["per_second"]
    return [
        "",
        "## What security costs",
        "",
        f"One indexer process storing {s['detections']:,} detections into PostgreSQL, read "
        "from a topic filled beforehand; runs of the two settings interleaved, "
        f"{plain['runs']} of each.",
        "",
        "| Kafka, PostgreSQL | detections/s (median) | range |",
        "|---|---|---|",
        f"| plain text, `sslmode=disable` | {plain['median']:,} | "
        f"{plain['min']:,}–{plain['max']:,} |",
        f"| SASL_SSL with SCRAM-SHA-512, `sslmode=verify-full` | {secured['median']:,} | "
        f"{secured['min']:,}–{secured['max']:,} |",
        "",
        f"Secured, the indexer keeps {s['ratio_secured_to_plain_text']} of its plain-text rate.",
    ]


def _side_by_side(s: dict[str, Any]) -> list[str]:
    """The API beside its limit: a bare endpoint with the same queries and JSON."""
    if "side_by_side_50_clients" in s:
        rows = [
            f"| `{_shortened(row['path'], 60)}` | {row['api_rps']:,} | {row['bare_rps']:,} | "
            f"{row['ratio']:.2f} |"
            for row in s["side_by_side_50_clients"].values()
        ]
        return [
            "",
            "Under 50 concurrent clients (wrk, 50 kept-alive connections, 10 s, the median of two "
            "runs interleaved), the API beside a bare Starlette endpoint over an asyncpg pool "
            "that answers with the same queries and the same JSON and nothing else "
            "(`bench/bare_api.py`), in the same run:",
            "",
            "| request | API (requests/s) | bare endpoint | API / bare |",
            "|---|---|---|---|",
            *rows,
        ]
    if "bare_first_page_rps_50_clients" in s:
        api, bare = s["first_page_rps_50_clients"], s["bare_first_page_rps_50_clients"]
        return [
            "",
            f"First page under 50 concurrent clients: {api:,} requests/s; the bare endpoint "
            f"(`bench/bare_api.py`) {bare:,}, so the API reaches {api / bare:.2f} of its limit.",
        ]
    return []


def _shortened(text: str, most: int) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


def _two_workers(s: dict[str, Any]) -> list[str]:
    if "two_workers_50_clients" not in s:
        return []
    return [
        "",
        "`roadwatch api --workers 2` beside one process, in the same run and the same way:",
        "",
        "| request | 1 worker (requests/s) | 2 workers | 2 / 1 |",
        "|---|---|---|---|",
        *(
            f"| `{path}` | {row['one_worker_rps']:,} | {row['two_workers_rps']:,} | "
            f"{row['ratio']:.2f} |"
            for path, row in s["two_workers_50_clients"].items()
        ),
    ]
