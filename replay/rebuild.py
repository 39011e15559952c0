"""Rebuild every projection from the event log, aside, and swap the result in at once.

    event log ──the live projection classes, run_until(log end)──▶ aside (fresh tables)
    aside ──one transaction: tables and tracking position──▶ live read side

The aside database (see replay/aside.py) is filled by the same ``ProjectionRunner`` and
projection classes as the live path. Only when every event up to the log's end is applied
are the live tables replaced, with the tracking row set to the position they were built to;
until then servers keep answering from the live tables, and a failed rebuild leaves them
untouched. A running server's runner finds its compare-and-set refused after the swap, takes
the rebuilt position and applies whatever the log gained meanwhile.
"""

from __future__ import annotations

from collections.abc import Sequence

from engine import open_store
from engine.settings import Settings
from projections.projection import Projection
from projections.runner import MAIN, Progress, ProjectionRunner
from replay.aside import aside


class RebuildFailed(Exception):
    """The rebuild stopped before its swap; the live read models are as they were."""


def rebuild(settings: Settings, *, projections: Sequence[Projection] | None = None,
            progress: Progress | None = None) -> int:
    """Rebuild every projection aside and swap it in; the number of events applied."""
    from projections.live import all_projections

    projections = list(projections or all_projections())
    store = open_store(settings)
    try:
        with aside(settings, "rebuild") as target:
            runner = ProjectionRunner(store, target.db, projections, name=MAIN)
            try:
                applied = runner.run_until(store.last_position(), progress)
                applied += runner.run_until()  # what the log gained meanwhile: less to redo
            except Exception as exc:
                raise RebuildFailed(f"rebuild stopped at position {runner.health.failing_position}"
                                    f": {runner.health.error}: {runner.health.message}") from exc
            try:
                target.swap_in([t for p in projections for t in p.tables], runner.position())
            except Exception as exc:
                raise RebuildFailed(f"could not swap the rebuilt tables in: {exc}") from exc
            return applied
    finally:
        store.close()
