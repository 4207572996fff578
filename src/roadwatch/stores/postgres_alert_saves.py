"""How a batch of alerts goes into the PostgreSQL store: in one round trip while batches are
small, by COPY once they are large."""

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg

from roadwatch.stores.postgres_statements import (
    ALERT_COLUMNS,
    INCOMING_ALERTS,
    SAVE_ALERTS,
    SAVE_INCOMING_ALERTS,
    SAVE_NEW_ALERTS,
    SAVE_NEW_INCOMING_ALERTS,
)

# A connection of the store's, holding the temporary table named, if any.
Acquire = Callable[[str | None], AbstractAsyncContextManager[asyncpg.Connection]]

# Below this many alerts, a batch goes as array parameters of one statement: the alerts of a
# light stream wait on one round trip. From it on, the batch is copied first, as detections
# are: five more round trips, but asyncpg then encodes each value once, where for an array
# parameter it asks of every element, in Python, whether it is itself an array.
COPIED_FROM = 100


async def save_alerts(acquire: Acquire, rows: list[tuple[Any, ...]]) -> int:
    """Keep the alerts (rows of ALERT_COLUMNS) and their rules; skip those kept already."""
    if len(rows) < COPIED_FROM:
        columns = list(zip(*rows, strict=True))
        async with acquire(None) as driver:
            try:
                return int(await driver.fetchval(SAVE_NEW_ALERTS, *columns))
            except asyncpg.UniqueViolationError:
                # A replay: the alerts kept already are skipped.
                return int(await driver.fetchval(SAVE_ALERTS, *columns))
    async with acquire(INCOMING_ALERTS) as driver, driver.transaction():
        await driver.copy_records_to_table(INCOMING_ALERTS, records=rows, columns=ALERT_COLUMNS)
        try:
            async with driver.transaction():  # a savepoint: the copied rows stay
                return int(await driver.fetchval(SAVE_NEW_INCOMING_ALERTS))
        except asyncpg.UniqueViolationError:
            return int(await driver.fetchval(SAVE_INCOMING_ALERTS))
