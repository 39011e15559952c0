"""What every projection offers the runner, the rebuild and the verifier."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
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


def iso(moment: datetime | None) -> str | None:
    """A fixed-width UTC text form, so that text comparison orders instants."""
    if moment is None:
        return None
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Projection(ABC):
    """A read model built only from events; droppable and rebuildable at any time."""

    name: str
    tables: tuple[Table, ...]

    def create_tables(self, cursor: Cursor) -> None:
        for table in self.tables:
            for statement in table.create:
                cursor.execute(statement)

    def drop_tables(self, cursor: Cursor) -> None:
        for table in self.tables:
            cursor.execute(f"DROP TABLE IF EXISTS {table.name}")

    @abstractmethod
    def apply(self, cursor: Cursor, events: Sequence[tuple[int, Any]]) -> None:
        """Apply a chunk of (position, domain event), in order, inside the caller's
        transaction (which also advances the tracking position)."""

    def rows(self, cursor: Cursor) -> dict[str, list[tuple[Any, ...]]]:
        out = {}
        for table in self.tables:
            cursor.execute(f"SELECT * FROM {table.name} ORDER BY {table.order_by}")
            out[table.name] = [tuple(row) for row in cursor.fetchall()]
        return out
