"""Retention's upkeep in MongoDB, every minute, reads the detections only when a day is to
go: FerretDB filters a collection by time in its own code, document by document."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import monitoring

from roadwatch.bootstrap.stores import detection_store
from roadwatch.domain import Alert, RuleRef
from tests.helpers.factories import make_detection
from tests.helpers.servers import Servers, fresh_mongo_database_url

pytestmark = pytest.mark.mongo

MIDNIGHT = datetime(2024, 5, 3, tzinfo=UTC)


class CommandsSent(monitoring.CommandListener):
    """The commands every client of this process sends to one database: (name, collection)."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.sent: list[tuple[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name == self.database:
            self.sent.append((event.command_name, event.command.get(event.command_name)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def touching(self, *collections: str) -> list[tuple[str, Any]]:
        return [command for command in self.sent if command[1] in collections]


async def test_an_upkeep_with_no_day_to_remove_reads_no_detection(servers: Servers) -> None:
    url = fresh_mongo_database_url(servers)
    commands = CommandsSent(url.rsplit("/", 1)[1])
    # Heard by clients made from now on; other databases' commands are left out.
    monitoring.register(commands)
    store = detection_store(url)
    await store.open()
    try:
        batch = [make_detection(timestamp=MIDNIGHT + timedelta(hours=h)) for h in range(3)]
        await store.save(batch)
        await store.save_alerts([Alert(d, (RuleRef(uuid.uuid4(), "any"),)) for d in batch])
        commands.sent.clear()

        for _upkeep in range(3):
            assert await store.drop_days_before(MIDNIGHT.date()) == []
        assert commands.touching("detections", "alerts") == []
        assert await store.count() == 3

        # A day to remove: then the documents are read, and go.
        assert await store.drop_days_before(MIDNIGHT.date() + timedelta(days=1)) == [
            MIDNIGHT.date()
        ]
        assert ("delete", "detections") in commands.sent
        assert ("delete", "alerts") in commands.sent
        assert await store.count() == 0
        assert await store.alerts() == []
    finally:
        await store.close()
