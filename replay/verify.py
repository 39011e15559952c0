"""Prove the read models: rebuild every projection aside, up to the live position, and
compare it with the live tables.

    live read side ──one snapshot: position P and a copy of every table──▶ aside
    event log ──────the live projection classes, run_until(P)────────────▶ aside
                                                 aside: compare copy and rebuild (EXCEPT)

Aside (replay/aside.py) is a temporary SQLite file in the data directory, or a temporary
PostgreSQL schema ``verify_<live schema>_<random>`` in the store's database; either is removed
afterwards. The result says which of three things happened: the projections agree, they
differ (and where), or the rebuild aside could not be completed (then nothing is compared).
The live tables are only read, all in one snapshot with their tracking position, so verify
is safe while ``quanyi serve`` runs and writes: whatever the live runner applies after that
snapshot is outside the comparison. The comparison runs in the database, so memory stays
flat however large the tables grow; only the differing rows (at most MAX_LINES of them)
reach Python.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from engine import open_store
from engine.settings import Settings
from projections.database import Cursor
from projections.projection import Projection, Table
from projections.runner import Progress, ProjectionRunner
from replay.aside import COPY, Aside, aside

MAX_LINES = 50


class Outcome(enum.Enum):
    AGREE = "agree"
    DIFFER = "differ"
    COULD_NOT_REBUILD = "could not rebuild"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    differences: list[str] = field(default_factory=list)  # when they differ
    error: str | None = None  # why the rebuild could not be completed


def verify(settings: Settings, *, projections: Sequence[Projection] | None = None,
           progress: Progress | None = None) -> Verdict:
    """Rebuild aside and compare with the live projections: agree, differ, or could not."""
    from projections.live import all_projections

    projections = list(projections or all_projections())
    store = open_store(settings)
    try:
        with aside(settings, "verify") as target:
            tables = [table for projection in projections for table in projection.tables]
            position, present = target.copy_live(tables)
            runner = ProjectionRunner(store, target.db, projections, name="verify")
            try:
                runner.run_until(position, progress)
            except Exception:  # noqa: BLE001 - reported as the verdict, with its cause
                health = runner.health
                return Verdict(Outcome.COULD_NOT_REBUILD, error=(
                    f"rebuild stopped at position {health.failing_position}: "
                    f"{health.error}: {health.message}"))
            if runner.position() < position:
                return Verdict(Outcome.COULD_NOT_REBUILD, error=(
                    f"rebuild reached position {runner.position()} of {position}"))
            lines = _compare(target, tables, present, position)
            return Verdict(Outcome.DIFFER if lines else Outcome.AGREE, lines)
    finally:
        store.close()


def _compare(target: Aside, tables: Sequence[Table], present: set[str],
             position: int) -> list[str]:
    # Before the live runner's first chunk its tables need not exist.
    lines = [f"{table.name}: missing from the live database" for table in tables
             if table.name not in present and position]
    with target.db.transaction(write=False) as cursor:
        compared = [table for table in tables if table.name in present]
        return lines + _differences(cursor, compared, MAX_LINES - len(lines))


# -- comparison -----------------------------------------------------------------------------

def _differences(cursor: Cursor, tables: Sequence[Table], room: int) -> list[str]:
    """One line per differing row key, at most ``room`` of them, then a count of the rest."""
    lines: list[str] = []
    total = 0
    for table in tables:
        differing = _differing_keys(table)
        cursor.execute(f"SELECT COUNT(*) FROM ({differing}) AS d")
        count = int(cursor.fetchone()[0])  # type: ignore[index]
        total += count
        if count and len(lines) < room:
            cursor.execute(f"{differing} ORDER BY {table.order_by} LIMIT %s",
                           (room - len(lines),))
            for key in cursor.fetchall():
                lines.append(_describe(cursor, table, tuple(key)))
    if total > len(lines):
        lines.append(f"... and {total - len(lines)} more differences ({total} in all)")
    return lines


def _differing_keys(table: Table) -> str:
    """SQL for the keys of rows that are not identical on both sides."""
    live, rebuilt, key = f"{COPY}{table.name}", table.name, ", ".join(table.key)
    return (f"SELECT {key} FROM (SELECT * FROM {live} EXCEPT SELECT * FROM {rebuilt}) AS a "
            f"UNION SELECT {key} FROM (SELECT * FROM {rebuilt} EXCEPT SELECT * FROM {live}) AS b")


def _describe(cursor: Cursor, table: Table, key: tuple[Any, ...]) -> str:
    """``table key: column live X, rebuilt Y`` — only the columns that differ."""
    live = _row(cursor, f"{COPY}{table.name}", table, key)
    rebuilt = _row(cursor, table.name, table, key)
    where = ", ".join(f"{column}={value!r}" for column, value in zip(table.key, key))
    if live is None or rebuilt is None:
        side, row = ("live", rebuilt) if live is None else ("rebuilt", live)
        return f"{table.name} {where}: missing from {side}; the other side has {_show(row)}"
    changed = [f"{c} live {live[c]!r}, rebuilt {rebuilt[c]!r}"
               for c in rebuilt if live.get(c) != rebuilt[c]]
    return f"{table.name} {where}: " + "; ".join(changed)


def _row(cursor: Cursor, name: str, table: Table, key: tuple[Any, ...]) -> dict[str, Any] | None:
    where = " AND ".join(f"{column} = %s" for column in table.key)
    cursor.execute(f"SELECT * FROM {name} WHERE {where}", key)
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip((d[0] for d in cursor.description or ()), row))


def _show(row: dict[str, Any] | None) -> str:
    return "nothing" if row is None else ", ".join(f"{c}={v!r}" for c, v in row.items())
