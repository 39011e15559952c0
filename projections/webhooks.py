"""The webhook endpoints read model: who owns which endpoint, what it hears, whether it is
enabled, and the log position it was registered at (where its deliveries begin).

Never the secret, sealed or not: the dispatcher reads that from the endpoint's own events.
"""

from __future__ import annotations

from typing import Any

import orjson

from engine.webhooks.endpoints import WebhookEndpoint
from projections.database import Cursor, ReadDatabase
from projections.projection import Chunk, Projection, Table, event_handlers, iso

COLUMNS = ("endpoint_id", "owner", "url", "event_types", "scope", "status", "disabled_reason",
           "registered_position", "created_at", "updated_at")

WEBHOOK_ENDPOINTS = Table("webhook_endpoints", (
    "CREATE TABLE IF NOT EXISTS webhook_endpoints (endpoint_id TEXT PRIMARY KEY, "
    "owner TEXT NOT NULL, url TEXT NOT NULL, event_types TEXT NOT NULL, scope TEXT, "
    "status TEXT NOT NULL, disabled_reason TEXT, registered_position BIGINT NOT NULL, "
    "created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS webhook_endpoints_owner "
    "ON webhook_endpoints (owner, registered_position)",
), "endpoint_id")


class WebhookEndpointProjection(Projection):
    name = "webhook_endpoints"
    tables = (WEBHOOK_ENDPOINTS,)
    project = event_handlers()

    @project.register
    def _registered(self, event: WebhookEndpoint.Created, position: int, chunk: Chunk) -> None:
        chunk.cursor.execute(
            f"INSERT INTO webhook_endpoints ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join(['%s'] * len(COLUMNS))})",
            (str(event.originator_id), event.owner, event.url,
             orjson.dumps(list(event.event_types)).decode(), event.scope, "enabled", None,
             position, iso(event.timestamp), iso(event.timestamp)))

    @project.register
    def _disabled(self, event: WebhookEndpoint.Disabled, position: int, chunk: Chunk) -> None:
        self._set(chunk.cursor, event, "disabled", event.reason)

    @project.register
    def _enabled(self, event: WebhookEndpoint.Enabled, position: int, chunk: Chunk) -> None:
        self._set(chunk.cursor, event, "enabled", None)

    @project.register
    def _rotated(self, event: WebhookEndpoint.SecretRotated, position: int,
                 chunk: Chunk) -> None:
        chunk.cursor.execute("UPDATE webhook_endpoints SET updated_at = %s WHERE endpoint_id = %s",
                             (iso(event.timestamp), str(event.originator_id)))

    @staticmethod
    def _set(cursor: Cursor, event: Any, status: str, reason: str | None) -> None:
        cursor.execute("UPDATE webhook_endpoints SET status = %s, disabled_reason = %s, "
                       "updated_at = %s WHERE endpoint_id = %s",
                       (status, reason, iso(event.timestamp), str(event.originator_id)))


class EndpointQueries:
    """Reads of the endpoints table: the API's listing and the dispatcher's roll call."""

    def __init__(self, db: ReadDatabase) -> None:
        self.db = db

    def listing(self, owner: str | None, after: int, limit: int) -> tuple[list[str], int | None]:
        """Endpoint ids in the order registered (``owner`` None: everyone's), from the
        position ``after``; and the position to continue from, if there are more."""
        where, params = ("WHERE registered_position > %s", [after])
        if owner is not None:
            where, params = (where + " AND owner = %s", [after, owner])
        with self.db.transaction(write=False) as cursor:
            cursor.execute("SELECT endpoint_id, registered_position FROM webhook_endpoints "
                           f"{where} ORDER BY registered_position LIMIT %s", (*params, limit + 1))
            rows = cursor.fetchall()
        more = int(rows[limit - 1][1]) if len(rows) > limit else None
        return [row[0] for row in rows[:limit]], more

    def enabled_of(self, owner: str) -> int:
        """How many enabled endpoints the owner has."""
        with self.db.transaction(write=False) as cursor:
            cursor.execute("SELECT COUNT(*) FROM webhook_endpoints "
                           "WHERE owner = %s AND status = 'enabled'", (owner,))
            row = cursor.fetchone()
        return int(row[0]) if row else 0

    def enabled(self) -> dict[str, int]:
        """Every enabled endpoint, with the log position it was registered at."""
        with self.db.transaction(write=False) as cursor:
            cursor.execute("SELECT endpoint_id, registered_position FROM webhook_endpoints "
                           "WHERE status = 'enabled'")
            return {row[0]: int(row[1]) for row in cursor.fetchall()}
