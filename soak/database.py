"""What the soak reads from PostgreSQL directly, as an operator's psql would."""

from collections import Counter
from datetime import datetime

import asyncpg


class Database:
    def __init__(self, url: str) -> None:
        self._url = url

    async def _fetch(self, query: str) -> list[asyncpg.Record]:
        connection = await asyncpg.connect(
            self._url, timeout=5, server_settings={"TimeZone": "UTC"}
        )
        try:
            return list(await connection.fetch(query, timeout=60))
        finally:
            await connection.close()

    async def stored(self) -> int | None:
        """How many detections are stored; None while the database does not answer."""
        return await self._count("detection_ids")

    async def alerts(self) -> int | None:
        """How many alerts the history holds; None while the database does not answer."""
        return await self._count("alerts")

    async def _count(self, table: str) -> int | None:
        try:
            rows = await self._fetch(f"SELECT count(*) FROM {table}")  # noqa: S608 - ours
        except (OSError, asyncpg.PostgresError, TimeoutError):
            return None
        return int(rows[0][0])

    async def detection_ids(self) -> Counter[str]:
        return Counter(str(row[0]) for row in await self._fetch("SELECT id FROM detections"))

    async def alert_ids(self) -> Counter[str]:
        return Counter(str(row[0]) for row in await self._fetch("SELECT id FROM alerts"))

    async def makes(self) -> dict[str, int]:
        rows = await self._fetch("SELECT make, count(*) FROM detections GROUP BY make")
        return {row[0]: row[1] for row in rows}

    async def per_minute(self) -> dict[tuple[datetime, str], int]:
        """Detections per minute and category, and alerts per minute (category "alerts")."""
        detections = await self._fetch(
            "SELECT date_trunc('minute', \"timestamp\"), category, count(*) FROM detections "
            "GROUP BY 1, 2"
        )
        alerts = await self._fetch(
            "SELECT date_trunc('minute', \"timestamp\"), 'alerts', count(*) FROM alerts GROUP BY 1"
        )
        return {(row[0], row[1]): row[2] for row in [*detections, *alerts]}
