"""Kafka Connect's standalone worker and the Debezium JDBC sink, fetched with Maven once into
roadwatch's cache: what bench/connect_sink.py runs beside the indexer."""

import shutil
import subprocess
import tarfile
from pathlib import Path

from roadwatch.infra.config import InfraConfig

DEBEZIUM = "3.3.1.Final"
CACHE = InfraConfig().cache / "connect"


def provision() -> Path:
    """The worker's classpath and the sink's plugin, fetched with Maven once; the cache."""
    libs, plugins = CACHE / "libs", CACHE / "plugins"
    mvn = shutil.which("mvn") or "mvn"
    if not libs.exists():
        pom = Path(__file__).parent / "pom.xml"
        scratch = CACHE / "libs.partial"
        shutil.rmtree(scratch, ignore_errors=True)
        subprocess.run(
            [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
             f"-DoutputDirectory={scratch}", "-DincludeScope=runtime"],
            check=True,
        )  # fmt: skip
        scratch.rename(libs)
    if not plugins.exists():
        artifact = f"io.debezium:debezium-connector-jdbc:{DEBEZIUM}:tar.gz:plugin"
        repository = CACHE / "m2"
        subprocess.run(
            [mvn, "-q", "-B", f"-Dmaven.repo.local={repository}", "dependency:get",
             "-Dtransitive=false", f"-Dartifact={artifact}"],
            check=True,
        )  # fmt: skip
        archive = next(repository.glob(f"io/debezium/debezium-connector-jdbc/{DEBEZIUM}/*.tar.gz"))
        with tarfile.open(archive) as packed:
            packed.extractall(CACHE / "plugins.partial", filter="data")
        (CACHE / "plugins.partial").rename(plugins)
    return CACHE
