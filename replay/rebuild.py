"""Rebuild every projection from the event log, with the live projection code.

An operator command: it drops the read models and replays the whole log in place, so
readers see empty or partial tables until it finishes. Run it with the servers stopped (or
accept that), and use `quanyi replay verify` to check live tables without touching them.
"""

from __future__ import annotations

from typing import Any


def rebuild(runtime: Any) -> int:
    """Drop and re-apply every projection; the number of events applied."""
    runner = runtime.runner
    runner.reset()
    target = runtime.store.last_position()
    applied = 0
    while runner.position() < target:
        done = runner.run_once(target)
        if done == 0:
            break
        applied += done
    return applied
