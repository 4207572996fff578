"""`roadwatch infra`: idempotent start, a clean stop, and one-line errors naming the service."""

import os
import socket
from pathlib import Path

import pytest

from roadwatch.infra.config import InfraConfig
from roadwatch.infra.service import port_is_free
from roadwatch.infra.stack import Infrastructure
from roadwatch.settings import load_settings
from tests.helpers.processes import process_alive, run_infra, running_pids

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.mongo]


def test_a_second_infra_up_changes_nothing() -> None:
    home = InfraConfig().home
    env = {**os.environ, "ROADWATCH_HOME": str(home)}
    assert run_infra("up", env=env).returncode == 0
    pids_before = running_pids(home)
    env_file_before = (home / "infra.env").read_text()

    second = run_infra("up", env=env)

    assert second.returncode == 0, second.stderr
    assert all(pid is not None for pid in pids_before.values())
    assert running_pids(home) == pids_before
    assert (home / "infra.env").read_text() == env_file_before
    assert second.stdout.count("already running") == 3, second.stdout


@pytest.mark.slow
def test_a_fresh_stack_comes_up_answers_and_goes_down_without_a_trace(
    isolated_env: dict[str, str],
) -> None:
    home = Path(isolated_env["ROADWATCH_HOME"])

    started = run_infra("up", env=isolated_env)
    assert started.returncode == 0, started.stderr
    assert started.stdout.count("started on") == 3, started.stdout
    pids = running_pids(home)
    status = run_infra("status", env=isolated_env)
    assert status.returncode == 0, status.stdout
    assert status.stdout.count("answering") == 3

    stopped = run_infra("down", env=isolated_env)

    assert stopped.returncode == 0, stopped.stderr
    for name, pid in pids.items():
        assert pid is not None
        assert not process_alive(pid), f"{name} (pid {pid}) outlived infra down"
    for variable in ("ROADWATCH_KAFKA_PORT", "ROADWATCH_POSTGRES_PORT", "ROADWATCH_FERRETDB_PORT"):
        assert port_is_free("127.0.0.1", int(isolated_env[variable])), variable
    assert run_infra("status", env=isolated_env).returncode == 1


def test_a_taken_port_is_a_one_line_error_naming_the_service(
    isolated_env: dict[str, str],
) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(isolated_env["ROADWATCH_KAFKA_PORT"])))
        squatter.listen()

        result = run_infra("up", "--only", "kafka", env=isolated_env)

    assert result.returncode == 1
    port = isolated_env["ROADWATCH_KAFKA_PORT"]
    assert result.stderr.splitlines() == [
        f"roadwatch: kafka: port {port} on 127.0.0.1 is already in use by another process"
    ]


def test_a_missing_java_is_a_one_line_error_naming_the_service(
    isolated_env: dict[str, str],
    tmp_path: Path,
) -> None:
    env = {**isolated_env, "PATH": str(tmp_path / "empty")}
    env.pop("JAVA_HOME", None)

    result = run_infra("up", "--only", "kafka", env=env)

    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith("roadwatch: kafka: java not found on PATH")


def test_infra_env_prints_the_connection_settings_ready_for_export() -> None:
    config = InfraConfig()
    expected = Infrastructure(config, load_settings(config.home)).connection_settings()

    result = run_infra("env", env={**os.environ, "ROADWATCH_HOME": str(config.home)})

    lines = result.stdout.splitlines()
    assert dict(line.split("=", 1) for line in lines) == expected
    assert {"KAFKA_BROKER_URL", "DETECTIONS_DB_URL", "USERS_DB_URL", "MONGO_URL"} <= set(expected)
