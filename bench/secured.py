"""What security costs the indexer: its rate over Kafka's SASL_SSL listener (SCRAM-SHA-512)
and PostgreSQL with `sslmode=verify-full`, beside plain text to both, runs interleaved."""

import asyncio
import random
import secrets
import statistics
from typing import Any

import orjson
from pydantic import SecretStr
from tests.helpers.servers import unique

from bench.indexer_throughput import indexer_rate, summary
from bench.stack import Bench, preload
from roadwatch.catalog.vehicles import load_catalog
from roadwatch.kafka.acls import Grant
from roadwatch.settings import Settings


async def measure(bench: Bench, *, count: int, runs: int) -> dict[str, Any]:
    rng = random.Random(3)
    catalog = load_catalog()
    messages = [rng.choice(catalog).as_message() for _ in range(count)]
    base = await bench.settings_for(store_url=bench.settings.detections_db_url)
    await preload(bench.kafka, base.detections_topic, messages)
    kafka = bench.infrastructure.kafka
    user, password = unique("bench-indexer"), secrets.token_urlsafe(24)
    access = kafka.access()
    await access.add_users({user: password})
    # Any group: each run reads the topic afresh under a new one (a prefixed ACL would be
    # tighter; the bench only needs the rate). Its transactions are named after the group,
    # which indexer_rate names bench_….
    await access.grant(
        [
            Grant(user, "Read", (base.detections_topic, base.watchlists_topic), ("*",)),
            Grant(
                user,
                "Write",
                (base.alerts_topic, base.dead_letter_topic),
                transactional_prefix="bench_",
            ),
        ]
    )
    ca = bench.infrastructure.config.tls_dir / "ca.pem"
    secured = base.model_copy(
        update={
            "kafka_broker_url": kafka.secured_bootstrap,
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": user,
            "kafka_sasl_password": SecretStr(password),
            "kafka_ssl_ca_file": ca,
        }
    )
    variants: dict[str, tuple[Settings, str]] = {
        "plain_text": (base, "?sslmode=disable"),
        "sasl_ssl_and_verify_full": (secured, f"?sslmode=verify-full&sslrootcert={ca}"),
    }
    rates: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(runs):
        for name, (settings, query) in variants.items():
            async with bench.postgres_database() as url:
                run = await indexer_rate(
                    settings.model_copy(update={"detections_db_url": url + query}), count
                )
            rates[name].append(run.per_second)
    plain = statistics.median(rates["plain_text"])
    tls = statistics.median(rates["sasl_ssl_and_verify_full"])
    return {
        "detections": count,
        **{name: {"per_second": summary(values)} for name, values in rates.items()},
        "ratio_secured_to_plain_text": round(tls / plain, 2),
    }


if __name__ == "__main__":
    print(
        orjson.dumps(
            asyncio.run(measure(Bench(), count=100_000, runs=1)), option=orjson.OPT_INDENT_2
        ).decode()
    )
