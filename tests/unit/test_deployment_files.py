"""Dockerfile and docker-compose.yml, checked without a Docker engine: what they set and run
is what roadwatch reads and has."""

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from roadwatch.cli import app
from roadwatch.infra.config import InfraConfig
from roadwatch.kafka.topics import roadwatch_topics
from roadwatch.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
ROADWATCH_SERVICES = {
    name: service
    for name, service in SERVICES.items()
    if service.get("image") == "roadwatch:latest"
}
READ_BY_ROADWATCH = {name.upper() for name in Settings.model_fields} | {
    f"ROADWATCH_{name.upper()}" for name in InfraConfig.model_fields
}


def test_the_compose_file_runs_the_producer_the_indexer_the_deliverer_and_the_api() -> None:
    commands = {name: service["command"][0] for name, service in ROADWATCH_SERVICES.items()}
    assert commands == {
        "producer": "produce",
        "indexer": "indexer",
        "deliver": "deliver",
        "api": "api",
    }
    assert {"kafka", "postgres", "mongo"} <= set(SERVICES)


@pytest.mark.parametrize("name", sorted(ROADWATCH_SERVICES))
def test_every_variable_set_for_roadwatch_is_one_it_reads(name: str) -> None:
    unread = set(ROADWATCH_SERVICES[name]["environment"]) - READ_BY_ROADWATCH
    assert not unread, f"{name} sets {sorted(unread)}, which roadwatch does not read"


@pytest.mark.parametrize("name", sorted(ROADWATCH_SERVICES))
def test_every_roadwatch_command_and_option_exists(name: str) -> None:
    result = CliRunner().invoke(app, [*ROADWATCH_SERVICES[name]["command"], "--help"])
    assert result.exit_code == 0, result.output


def test_long_running_services_have_health_checks_and_dependencies_exist() -> None:
    for name in ("kafka", "postgres", "mongo", "indexer", "api"):
        assert SERVICES[name]["healthcheck"]["test"], name
    for name, service in SERVICES.items():
        assert set(service.get("depends_on", {})) <= set(SERVICES), name


def test_the_compose_topics_are_the_ones_roadwatch_uses() -> None:
    script = SERVICES["topics"]["command"][0]
    created = {
        name: (int(partitions), dict([config.split("=")]) if config else {})
        for name, partitions, config in re.findall(r"\ncreate (\S+) (\d+) ?(\S*)", script)
    }
    wanted = roadwatch_topics(Settings())
    assert created == {
        spec.name: (
            spec.partitions,
            {k: v for k, v in spec.config.items() if k == "cleanup.policy"},
        )
        for spec in wanted
    }
    assert set(created) == {
        ROADWATCH_SERVICES["api"]["environment"][key]
        for key in (
            "DETECTIONS_TOPIC",
            "ALERTS_TOPIC",
            "DEAD_LETTER_TOPIC",
            "WATCHLISTS_TOPIC",
            "WEBHOOKS_DEAD_LETTER_TOPIC",
        )
    }


def test_the_api_runs_in_production_mode_and_needs_a_secret() -> None:
    environment = ROADWATCH_SERVICES["api"]["environment"]
    assert environment["ENVIRONMENT"] == "production"
    assert environment["JWT_SECRET"].startswith("${JWT_SECRET:?")
    assert all(port.startswith("127.0.0.1:") for port in ROADWATCH_SERVICES["api"]["ports"])


def test_the_image_runs_roadwatch_as_an_unprivileged_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER roadwatch$", dockerfile, re.MULTILINE)
    assert 'ENTRYPOINT ["roadwatch"]' in dockerfile
    assert re.search(r"^EXPOSE 8000 9400$", dockerfile, re.MULTILINE)
    for copied in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.MULTILINE):
        for path in copied.split():
            assert (ROOT / path).exists(), path


def test_settings_rendered_as_an_environment_read_back_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(
        suspicious_vehicle="SUV, Pickup", jwt_secret="s" * 40, detections_per_second=2.5
    )
    for name, value in settings.as_environment().items():
        monkeypatch.setenv(name, value)
    assert Settings() == settings
    assert set(settings.as_environment()) <= READ_BY_ROADWATCH
