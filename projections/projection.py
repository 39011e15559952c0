"""What every projection offers the runner, the rebuild and the verifier.

A projection handles one event type per method: each class gets its own dispatcher
(``project = event_handlers()``) and registers a handler on it for every event class it
projects, so the status table lives in the handlers and not in isinstance chains.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import singledispatchmethod
from inspect import getattr_static
from typing import Any

from projections.database import Cursor


@dataclass(frozen=True)
class Table:
    name: str
    create: tuple[str, ...]  # CREATE TABLE / INDEX statements, each IF NOT EXISTS
    order_by: str  # its key columns: a total order over its rows, for comparison

    @property
    def key(self) -> tuple[str, ...]:
        """The columns that identify one row (those of ``order_by``)."""
        return tuple(column.strip() for column in self.order_by.split(","))


# -- values: every value an event field can hold must become a storable column value ------
#
# The store accepts whatever its transcoder can encode; a projection that refused one of
# those values would stop every read model for good. So each conversion here is total.
# (Text that PostgreSQL cannot hold, NUL, is mapped once in projections/database.py.)

EARLIEST = datetime.min.replace(tzinfo=timezone.utc)
LATEST = datetime.max.replace(tzinfo=timezone.utc)
BIGINT_MIN, BIGINT_MAX = -(2 ** 63), 2 ** 63 - 1
KEY_CHARS = 200  # indexed text beyond this is shortened (a PostgreSQL B-tree entry is < 2.7 kB)


def iso(moment: datetime | None) -> str | None:
    """A fixed-width UTC text form, so that text comparison orders instants.

    An instant whose UTC form falls outside years 1-9999 (9999-12-31T23:59:59-01:00) is
    clamped to the nearest representable one, which keeps the order; a naive one is UTC.
    """
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        utc = moment.astimezone(timezone.utc)
    except OverflowError:
        utc = LATEST if moment.year > 1 else EARLIEST
    # isoformat pads the year to four digits (strftime's %Y does not below year 1000).
    return utc.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def bigint(number: int) -> int:
    """An event's integer within a BIGINT column (the store holds up to 2**64 - 1)."""
    return min(max(number, BIGINT_MIN), BIGINT_MAX)


def key(text: str | None) -> str | None:
    """Text for an indexed column, short enough for any index: a longer value keeps its
    first KEY_CHARS characters and a digest of the whole, so distinct values stay distinct.
    Queries pass their look-up values through the same function."""
    if text is None or len(text) <= KEY_CHARS:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{text[:KEY_CHARS]}…{digest}"


@dataclass
class Chunk:
    """One chunk's work in progress: the transaction's cursor, and whatever a projection
    gathers across the chunk to write in a few batched statements at its end."""

    cursor: Cursor


def event_handlers() -> singledispatchmethod:
    """A projection class's own dispatcher; an event with no handler registered on it
    changes none of that projection's tables (a projection keeps what it needs)."""

    @singledispatchmethod
    def project(self: Projection, event: Any, position: int, chunk: Chunk) -> None:
        """Not this projection's business."""

    return project


class Projection:
    """A read model built only from events; droppable and rebuildable at any time."""

    name: str
    tables: tuple[Table, ...]
    project = event_handlers()  # each projection replaces it with its own, then registers

    def create_tables(self, cursor: Cursor) -> None:
        for table in self.tables:
            for statement in table.create:
                cursor.execute(statement)

    def drop_tables(self, cursor: Cursor) -> None:
        for table in self.tables:
            cursor.execute(f"DROP TABLE IF EXISTS {table.name}")

    def apply(self, cursor: Cursor, events: Sequence[tuple[int, Any]]) -> None:
        """Apply a chunk of (position, domain event), in order, inside the caller's
        transaction (which also advances the tracking position)."""
        chunk = self.open_chunk(cursor, events)
        project = self.project  # bound once: binding a singledispatchmethod is not free
        for position, event in events:
            project(event, position, chunk)
        self.close_chunk(chunk)

    def open_chunk(self, cursor: Cursor, events: Sequence[tuple[int, Any]]) -> Chunk:
        """What the handlers share across one chunk (a projection that batches reads here)."""
        return Chunk(cursor)

    def close_chunk(self, chunk: Chunk) -> None:
        """Write what the handlers gathered (a projection that batches writes does it here)."""

    @classmethod
    def handled(cls) -> frozenset[type]:
        """The event classes this projection has a handler for."""
        registry = getattr_static(cls, "project").dispatcher.registry
        return frozenset(registry) - {object}

    def rows(self, cursor: Cursor) -> dict[str, list[tuple[Any, ...]]]:
        out = {}
        for table in self.tables:
            cursor.execute(f"SELECT * FROM {table.name} ORDER BY {table.order_by}")
            out[table.name] = [tuple(row) for row in cursor.fetchall()]
        return out
