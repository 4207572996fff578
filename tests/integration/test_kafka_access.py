"""Kafka's own tools add users and grant ACLs, sharing their classes through an archive."""

import secrets
from pathlib import Path

import pytest

from roadwatch.kafka.acls import Grant
from tests.helpers.servers import Servers, unique

pytestmark = pytest.mark.kafka


async def test_the_first_tool_archives_its_classes_and_a_damaged_archive_is_ignored(
    servers: Servers, tmp_path: Path
) -> None:
    archive = tmp_path / "tools.jsa"
    access = servers.infrastructure.kafka.access(class_archive=archive)
    user = unique("archive")

    await access.add_users({user: secrets.token_urlsafe(16)})

    # Written whole, under its own name: no half-written archive is left beside it.
    assert _names(tmp_path) == ["tools.jsa"]
    assert archive.stat().st_size > 1_000_000

    # An archive the JVM cannot map (damaged, or another Java's) costs speed, not the run.
    archive.write_bytes(b"not an archive")
    await access.grant([Grant(user, "Read", (unique("topic"),))])


async def test_a_tool_runs_though_its_classes_cannot_be_archived(
    servers: Servers, tmp_path: Path
) -> None:
    # A JVM asked to write an archive it cannot write does not start at all.
    archive = tmp_path / "no such folder" / "tools.jsa"
    access = servers.infrastructure.kafka.access(class_archive=archive)
    user = unique("archive")

    await access.add_users({user: secrets.token_urlsafe(16)})
    await access.grant([Grant(user, "Read", (unique("topic"),))])

    assert not archive.parent.exists()


def _names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())
